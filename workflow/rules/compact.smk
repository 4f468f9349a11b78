# Compact models (docs/method.md section 4): per test session the teacher labels its distillation pool (a recipe:
# images are regenerated where they are needed, never stored), then one job per chunk of neurons (discovered from the
# teacher's labels by a checkpoint) reads the pool by index, then the session's collection.


rule teacher_labels:
    input:
        members=member_files(),
        readouts=f"{DATA}/ensemble/readouts/{{session}}.pt",
        dataset=session_dataset(),
        other_datasets=other_session_datasets,
    output:
        teacher=f"{DATA}/compact/{{session}}/teacher.nc",
    params:
        pool=section("compact", "pool"),
        features=section("features"),
        seed=config["seed"],
        device=config["ensemble"]["device"],
    log:
        logs("teacher_labels/{session}.log"),
    benchmark:
        benchmarks("teacher_labels/{session}.tsv")
    threads: config["ensemble"]["threads"]
    resources:
        mem_mb=grow(TEACHER_RESOURCES["mem_mb"]),
        runtime=grow(TEACHER_RESOURCES["runtime"]),
        gpu=gpus(config["ensemble"]["device"]),
    conda:
        ENV
    script:
        "../scripts/teacher_labels.py"


checkpoint plan_compression:
    input:
        teacher=f"{DATA}/compact/{{session}}/teacher.nc",
    output:
        plan=f"{DATA}/compact/{{session}}/plan.json",
    params:
        neurons_per_job=config["compact"]["neurons_per_job"],
    log:
        logs("plan_compression/{session}.log"),
    benchmark:
        benchmarks("plan_compression/{session}.tsv")
    threads: 1
    priority: 10  # a few seconds that let the scheduler see the session's compression jobs at once
    resources:
        mem_mb=grow(1000),
        runtime=grow(5),
    conda:
        ENV
    script:
        "../scripts/plan_compression.py"


rule compress_neurons:
    input:
        teacher=f"{DATA}/compact/{{session}}/teacher.nc",
        dataset=session_dataset(),
        other_datasets=other_session_datasets,
        plan=f"{DATA}/compact/{{session}}/plan.json",
    output:
        models=directory(f"{DATA}/compact/{{session}}/models/{{chunk}}"),
    params:
        compact=compression_settings(),
        seed=config["seed"],
    log:
        logs("compress_neurons/{session}_{chunk}.log"),
    benchmark:
        benchmarks("compress_neurons/{session}_{chunk}.tsv")
    threads: config["compact"]["threads"]
    priority: 5  # the longest jobs first: the short ones that follow fill the cores at the end
    resources:
        mem_mb=grow(COMPRESSION_RESOURCES["mem_mb"]),
        runtime=grow(COMPRESSION_RESOURCES["runtime"]),
        gpu=gpus(config["compact"]["device"]),
        image_cache_mb=config["compact"]["image_cache_mb"],  # a resource, not a param: it changes no model
    conda:
        ENV
    script:
        "../scripts/compress_neurons.py"


rule collect_compact_models:
    input:
        chunks=compact_chunk_dirs,
        dataset=session_dataset(),
    output:
        predictions=f"{DATA}/compact/{{session}}/predictions.nc",
        table=f"{DATA}/compact/{{session}}/models.csv",
    log:
        logs("collect_compact_models/{session}.log"),
    benchmark:
        benchmarks("collect_compact_models/{session}.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/collect_compact_models.py"


rule published_compact_predictions:
    input:
        dataset=session_dataset(),
    output:
        predictions=f"{DATA}/compact/published/{{session}}.nc",
    params:
        root=SOURCE.get("path", ""),
    log:
        logs("published_compact_predictions/{session}.log"),
    benchmark:
        benchmarks("published_compact_predictions/{session}.tsv")
    threads: config["compact"]["threads"]
    resources:
        mem_mb=grow(4000),
        runtime=grow(30),
    conda:
        ENV
    script:
        "../scripts/published_compact_predictions.py"


rule compact_comparison:
    input:
        evaluations=expand(f"{DATA}/evaluation/{{session}}.csv", session=TEST_SESSIONS),
    output:
        table=f"{DATA}/tables/compact_comparison.csv",
    log:
        logs("compact_comparison.log"),
    benchmark:
        benchmarks("compact_comparison.tsv")
    threads: 1
    resources:
        mem_mb=grow(1000),
        runtime=grow(5),
    conda:
        ENV
    script:
        "../scripts/compact_comparison.py"
