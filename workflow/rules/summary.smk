# The run summary: results/<dataset>/summary.json, the headline figures of the run.


rule summary:
    input:
        sessions=session_datasets(),
    output:
        summary=f"{DATA}/summary.json",
    params:
        dataset=config["dataset"],
        roles=ROLES,
    log:
        f"{DATA}/logs/summary.log",
    benchmark:
        f"{DATA}/benchmarks/summary.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/summarize.py"
