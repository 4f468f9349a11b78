# The closed loop: a session's stimulus set shown to the same neurons (simulated here, or the lab's next recording),
# preprocessed like every session, and scored.


if SOURCE["kind"] == "virtual_lab":

    rule simulate_closed_loop:
        input:
            stimulus_set=f"{DATA}/synthesis/{{session}}/stimulus_set",
            neurons=f"{DATA}/ground_truth/{{session}}_neurons.npz",
            truth=f"{DATA}/ground_truth/{{session}}.nc",
        output:
            nwb=f"{DATA}/closed_loop/{{session}}/recording.nwb",
            truth=f"{DATA}/closed_loop/{{session}}/truth.nc",
        params:
            lab=lab_settings(),
            repeats=config["closed_loop"]["repeats"],
            seed=config["seed"],
            template=config["preprocess"]["nwb_stimulus_template"],
            image_column=config["preprocess"]["nwb_image_column"],
        log:
            logs("simulate_closed_loop/{session}.log"),
        benchmark:
            benchmarks("simulate_closed_loop/{session}.tsv")
        threads: 1
        resources:
            mem_mb=grow(4000),
            runtime=grow(30),
        conda:
            ENV
        script:
            "../scripts/simulate_closed_loop.py"


rule preprocess_closed_loop:
    input:
        nwb=closed_loop_recording,
    output:
        dataset=f"{DATA}/closed_loop/{{session}}/session.nc",
    params:
        preprocess=section("preprocess"),
        seed=config["seed"],
        session=lambda wildcards: f"{wildcards.session}_closedloop",
        area=session_area,  # the same neurons as the compressed session's
    log:
        logs("preprocess_closed_loop/{session}.log"),
    benchmark:
        benchmarks("preprocess_closed_loop/{session}.tsv")
    threads: 1
    resources:
        mem_mb=grow(4000),
        runtime=grow(30),
    conda:
        ENV
    script:
        "../scripts/preprocess_closed_loop.py"


rule score_closed_loop:
    input:
        stimulus_set=f"{DATA}/synthesis/{{session}}/stimulus_set",
        dataset=f"{DATA}/closed_loop/{{session}}/session.nc",
        truth=closed_loop_truth,
    output:
        scores=f"{DATA}/closed_loop/{{session}}/scores.csv",
        adversarial=f"{DATA}/closed_loop/{{session}}/adversarial.csv",
    params:
        closed_loop=section("closed_loop"),
        seed=config["seed"],
    log:
        logs("score_closed_loop/{session}.log"),
    benchmark:
        benchmarks("score_closed_loop/{session}.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/score_closed_loop.py"


rule check_synthesis_on_published:
    input:
        stimulus_set=f"{DATA}/synthesis/{{session}}/stimulus_set",
        dataset=session_dataset(),
    output:
        scores=f"{DATA}/closed_loop/{{session}}/published_check_scores.csv",
        adversarial=f"{DATA}/closed_loop/{{session}}/published_check_adversarial.csv",
    params:
        root=SOURCE.get("path", ""),
        closed_loop=section("closed_loop"),
        seed=config["seed"],
    log:
        logs("check_synthesis_on_published/{session}.log"),
    benchmark:
        benchmarks("check_synthesis_on_published/{session}.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/check_synthesis_on_published.py"
