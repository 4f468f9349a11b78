# Held-out accuracy of every model of each test session, one table per session.


rule evaluate_session:
    input:
        unpack(evaluation_inputs),
        dataset=session_dataset(),
        truth=lambda wildcards: truth_of(wildcards.session),
    output:
        table=f"{DATA}/evaluation/{{session}}.csv",
    log:
        logs("evaluate_session/{session}.log"),
    benchmark:
        benchmarks("evaluate_session/{session}.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/evaluate_session.py"
