# The deep ensemble, its mapping to held-out sessions, the task-driven baseline and active learning.


rule extract_features:
    input:
        images=images_of,
    output:
        features=f"{DATA}/features/{{image_set}}.pt",
    params:
        features=section("features"),
        layers=feature_layers_of,
    log:
        logs("extract_features/{image_set}.log"),
    benchmark:
        benchmarks("extract_features/{image_set}.tsv")
    threads: config["features"]["threads"]
    resources:
        mem_mb=grow(lambda wildcards: feature_job_resources(wildcards)["mem_mb"]),
        runtime=grow(lambda wildcards: feature_job_resources(wildcards)["runtime"]),
        gpu=gpus(config["features"]["device"]),
    conda:
        ENV
    script:
        "../scripts/extract_features.py"


rule train_member:
    input:
        train_datasets=expand(session_dataset(), session=TRAIN_SESSIONS),
        train_features=expand(f"{DATA}/features/{{session}}.pt", session=TRAIN_SESSIONS),
        validation_dataset=session_dataset(VALIDATION_SESSION),
        validation_features=f"{DATA}/features/{VALIDATION_SESSION}.pt",
        fit_half_datasets=expand(session_dataset(), session=FIT_HALF_SESSIONS),
        fit_half_features=expand(f"{DATA}/features/{{session}}.pt", session=FIT_HALF_SESSIONS),
    output:
        member=f"{DATA}/ensemble/members/member{{member}}.pt",
    params:
        checkpoint=lambda wildcards: f"{DATA}/ensemble/checkpoints/member{wildcards.member}.pt",
        ensemble=section("ensemble"),
        features=section("features"),
        seed=config["seed"],
    log:
        logs("train_member/member{member}.log"),
    benchmark:
        benchmarks("train_member/member{member}.tsv")
    threads: config["ensemble"]["threads"]
    resources:
        mem_mb=grow(MEMBER_RESOURCES["mem_mb"]),
        runtime=grow(MEMBER_RESOURCES["runtime"]),
        gpu=gpus(config["ensemble"]["device"]),
    conda:
        ENV
    script:
        "../scripts/train_member.py"


rule map_session:
    input:
        members=member_files(),
        dataset=session_dataset(),
        features=f"{DATA}/features/{{session}}.pt",
    output:
        predictions=f"{DATA}/ensemble/predictions/{{session}}.nc",
        readouts=f"{DATA}/ensemble/readouts/{{session}}.pt",
    params:
        mapping=section("mapping"),
        features=section("features"),
        device=config["ensemble"]["device"],
        seed=config["seed"],
    log:
        logs("map_session/{session}.log"),
    benchmark:
        benchmarks("map_session/{session}.tsv")
    threads: config["ensemble"]["threads"]
    resources:
        mem_mb=grow(6000),
        runtime=grow(60),
        gpu=gpus(config["ensemble"]["device"]),
    conda:
        ENV
    script:
        "../scripts/map_session.py"


rule task_driven_session:
    input:
        dataset=session_dataset(),
        features=f"{DATA}/features/{{session}}.pt",
    output:
        predictions=f"{DATA}/task_driven/predictions/{{session}}.nc",
    params:
        task_driven=section("task_driven"),
        features=section("features"),
        seed=config["seed"],
    log:
        logs("task_driven_session/{session}.log"),
    benchmark:
        benchmarks("task_driven_session/{session}.tsv")
    threads: config["task_driven"]["threads"]
    resources:
        mem_mb=grow(6000),
        runtime=grow(60),
    conda:
        ENV
    script:
        "../scripts/task_driven_session.py"


rule candidate_pool:
    output:
        pool=f"{DATA}/active_learning/{CANDIDATE_POOL}.nc",
    params:
        pool=section("active_learning", "pool"),
        image_size=pool_image_size(),
        seed=config["seed"],
    log:
        logs("candidate_pool.log"),
    benchmark:
        benchmarks("candidate_pool.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/candidate_pool.py"


rule select_active_learning_images:
    input:
        members=member_files(),
        readouts=expand(f"{DATA}/ensemble/readouts/{{session}}.pt", session=TEST_SESSIONS),
        pool=f"{DATA}/active_learning/{CANDIDATE_POOL}.nc",
        pool_features=f"{DATA}/features/{CANDIDATE_POOL}.pt",
    output:
        stimulus_set=directory(f"{DATA}/active_learning/stimulus_set"),
    params:
        n_images=config["active_learning"]["n_images"],
        layer=config["features"]["layer"],
        device=config["ensemble"]["device"],
    log:
        logs("select_active_learning_images.log"),
    benchmark:
        benchmarks("select_active_learning_images.tsv")
    threads: config["ensemble"]["threads"]
    resources:
        mem_mb=grow(4000),
        runtime=grow(30),
        gpu=gpus(config["ensemble"]["device"]),
    conda:
        ENV
    script:
        "../scripts/select_active_learning_images.py"
