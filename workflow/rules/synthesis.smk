# Synthesised images of every compact model: one image set per compression job, then a session's stimulus set. The
# distillation pool's images they use (the controls, the natural images searched) are regenerated from its recipe.


rule synthesize_images:
    input:
        models=f"{DATA}/compact/{{session}}/models/{{chunk}}",
        dataset=session_dataset(),
        other_datasets=other_session_datasets,
    output:
        stimuli=f"{DATA}/synthesis/{{session}}/chunks/{{chunk}}.nc",
    params:
        pool=section("compact", "pool"),
        synthesis=section("synthesis"),
        seed=config["seed"],
    log:
        logs("synthesize_images/{session}_{chunk}.log"),
    benchmark:
        benchmarks("synthesize_images/{session}_{chunk}.tsv")
    threads: config["synthesis"]["threads"]
    resources:
        mem_mb=grow(SYNTHESIS_RESOURCES["mem_mb"]),
        runtime=grow(SYNTHESIS_RESOURCES["runtime"]),
        gpu=gpus(config["synthesis"]["device"]),
    conda:
        ENV
    script:
        "../scripts/synthesize_images.py"


rule collect_stimuli:
    input:
        chunks=synthesis_chunk_files,
        models=compact_chunk_dirs,
        dataset=session_dataset(),
        other_datasets=other_session_datasets,
    output:
        stimulus_set=directory(f"{DATA}/synthesis/{{session}}/stimulus_set"),
    params:
        pool=section("compact", "pool"),
        synthesis=section("synthesis"),
        seed=config["seed"],
    log:
        logs("collect_stimuli/{session}.log"),
    benchmark:
        benchmarks("collect_stimuli/{session}.tsv")
    threads: 1
    resources:
        mem_mb=grow(4000),
    conda:
        ENV
    script:
        "../scripts/collect_stimuli.py"
