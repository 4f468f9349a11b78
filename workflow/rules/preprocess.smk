# Preprocessing: recordings -> one session dataset (NetCDF) per session.

if SOURCE["kind"] in ("virtual_lab", "nwb"):

    rule preprocess_session:
        input:
            nwb=recording_nwb,
        output:
            dataset=session_dataset(),
        params:
            preprocess=section("preprocess"),
            seed=config["seed"],
            area=session_area,
        log:
            logs("preprocess_session/{session}.log"),
        benchmark:
            benchmarks("preprocess_session/{session}.tsv")
        threads: 1
        resources:
            mem_mb=grow(4000),
            runtime=grow(30),
        conda:
            ENV
        script:
            "../scripts/preprocess_session.py"

else:

    rule ingest_cowley_session:
        input:
            unpack(cowley_inputs),
        output:
            dataset=session_dataset(),
        params:
            root=SOURCE["path"],
            preprocess=section("preprocess"),
            seed=config["seed"],
            monkey=cowley_monkey,
            area=session_area,
        log:
            logs("ingest_cowley_session/{session}.log"),
        benchmark:
            benchmarks("ingest_cowley_session/{session}.tsv")
        threads: 1
        resources:
            mem_mb=grow(4000),
            runtime=grow(30),
        conda:
            ENV
        script:
            "../scripts/ingest_cowley_session.py"
