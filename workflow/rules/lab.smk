# The virtual V4 lab: simulated recording sessions (the embedded default; no download).


rule simulate_session:
    output:
        nwb=f"{DATA}/raw/{{session}}.nwb",
        truth=f"{DATA}/ground_truth/{{session}}.nc",
        neurons=f"{DATA}/ground_truth/{{session}}_neurons.npz",
    params:
        design=lab_design,
        lab=lab_settings(),
        seed=config["seed"],
        template=config["preprocess"]["nwb_stimulus_template"],
        image_column=config["preprocess"]["nwb_image_column"],
    log:
        logs("simulate_session/{session}.log"),
    benchmark:
        benchmarks("simulate_session/{session}.tsv")
    threads: 1
    resources:
        mem_mb=grow(4000),
        runtime=grow(30),
    conda:
        ENV
    script:
        "../scripts/simulate_session.py"
