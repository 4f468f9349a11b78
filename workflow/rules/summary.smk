# The run summary: results/<dataset>/summary.json, the headline figures of the run; its tables for the report; the
# MANIFEST.


rule summary:
    input:
        sessions=session_datasets(),
        members=member_files(),
        evaluations=expand(f"{DATA}/evaluation/{{session}}.csv", session=TEST_SESSIONS),
        active_learning=f"{DATA}/active_learning/stimulus_set",
        compact_models=expand(f"{DATA}/compact/{{session}}/models.csv", session=COMPACT_SESSIONS),
        comparison=f"{DATA}/tables/compact_comparison.csv",
        stimulus_sets=expand(f"{DATA}/synthesis/{{session}}/stimulus_set", session=COMPACT_SESSIONS),
        closed_loop_scores=expand(f"{DATA}/closed_loop/{{session}}/scores.csv", session=CLOSED_LOOP_SESSIONS),
        closed_loop_adversarial=expand(
            f"{DATA}/closed_loop/{{session}}/adversarial.csv", session=CLOSED_LOOP_SESSIONS
        ),
        published_check_scores=expand(
            f"{DATA}/closed_loop/{{session}}/published_check_scores.csv", session=PUBLISHED_CHECK_SESSIONS
        ),
        published_check_adversarial=expand(
            f"{DATA}/closed_loop/{{session}}/published_check_adversarial.csv", session=PUBLISHED_CHECK_SESSIONS
        ),
        filters_table=f"{DATA}/analysis/filters_per_layer.csv",
        early_filters=f"{DATA}/analysis/early_filters.nc",
        dot_selectivity=f"{DATA}/analysis/dot_selectivity.csv",
        dot_ablation=f"{DATA}/analysis/dot_ablation.csv",
        published_filters_table=rules.analyze_published_models.output.table if PUBLISHED_SESSIONS else [],
        published_early_filters=rules.analyze_published_models.output.early_filters if PUBLISHED_SESSIONS else [],
        published_dot_selectivity=rules.analyze_published_models.output.selectivity if PUBLISHED_SESSIONS else [],
    output:
        summary=f"{DATA}/summary.json",
    params:
        dataset=config["dataset"],
        roles=ROLES,
        simulated=SOURCE["kind"] == "virtual_lab",
    log:
        logs("summary.log"),
    benchmark:
        benchmarks("summary.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/summary.py"


rule report_tables:
    input:
        summary=rules.summary.output.summary,
        compact_models=expand(f"{DATA}/compact/{{session}}/models.csv", session=COMPACT_SESSIONS),
    output:
        summary=report(
            f"{DATA}/tables/summary.html",
            caption="../report/summary_table.rst",
            category="Tables",
            labels={"table": "the run's headline figures"},
        ),
        sessions=report(
            f"{DATA}/tables/sessions.html",
            caption="../report/sessions_table.rst",
            category="Tables",
            labels={"table": "each test session"},
        ),
        compact_models=report(
            f"{DATA}/tables/compact_models.html",
            caption="../report/compact_models_table.rst",
            category="Tables",
            labels={"table": "the compact models (their model cards)"},
        ),
    log:
        logs("report_tables.log"),
    benchmark:
        benchmarks("report_tables.tsv")
    threads: 1
    resources:
        mem_mb=grow(1000),
    conda:
        ENV
    script:
        "../scripts/report_tables.py"


# Every output of the report beside the summary: the figures, the tables and the compact models' pages.
REPORT_ITEMS = [
    rules.figure_accuracy.output,
    rules.figure_synthesis.output,
    rules.figure_compressibility.output,
    rules.figure_dots.output,
    rules.figure_predictions.output,
    rules.figure_training_curves.output,
    rules.figure_compact_models.output,
    rules.report_tables.output,
    rules.figure_published_models.output if PUBLISHED_SESSIONS else [],
    rules.figure_published_check.output if PUBLISHED_CHECK_SESSIONS else [],
]


rule manifest:
    input:
        rules.summary.output,
        REPORT_ITEMS,
    output:
        manifest=f"{DATA}/MANIFEST",
    params:
        config=outputs_config(),
    log:
        logs("manifest.log"),
    benchmark:
        benchmarks("manifest.tsv")
    threads: 1
    resources:
        mem_mb=grow(1000),
    conda:
        ENV
    script:
        "../scripts/manifest.py"
