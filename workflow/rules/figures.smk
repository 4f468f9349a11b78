# How the compact models compute (analyses), and the paper's four figures (PNG for the report, PDF for papers).


rule analyze_compressibility:
    input:
        models=expand(f"{DATA}/compact/{{session}}/models.csv", session=COMPACT_SESSIONS),
    output:
        table=f"{DATA}/analysis/filters_per_layer.csv",
        early_filters=f"{DATA}/analysis/early_filters.nc",
    params:
        analysis=section("analysis"),
        seed=config["seed"],
    log:
        logs("analyze_compressibility.log"),
    benchmark:
        benchmarks("analyze_compressibility.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/analyze_compressibility.py"


rule analyze_dots:
    input:
        models=expand(f"{DATA}/compact/{{session}}/models.csv", session=COMPACT_SESSIONS),
        stimulus_sets=expand(f"{DATA}/synthesis/{{session}}/stimulus_set", session=COMPACT_SESSIONS),
        truths=[path for session in COMPACT_SESSIONS for path in truth_of(session)],
    output:
        selectivity=f"{DATA}/analysis/dot_selectivity.csv",
        tuning=f"{DATA}/analysis/dot_tuning.csv",
        ablation=f"{DATA}/analysis/dot_ablation.csv",
    params:
        analysis=section("analysis"),
    log:
        logs("analyze_dots.log"),
    benchmark:
        benchmarks("analyze_dots.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/analyze_dots.py"


rule analyze_published_models:
    input:
        predictions=expand(f"{DATA}/compact/published/{{session}}.nc", session=PUBLISHED_SESSIONS),
    output:
        table=f"{DATA}/analysis/published/filters_per_layer.csv",
        early_filters=f"{DATA}/analysis/published/early_filters.nc",
        selectivity=f"{DATA}/analysis/published/dot_selectivity.csv",
    params:
        root=SOURCE.get("path", ""),
        analysis=section("analysis"),
        seed=config["seed"],
    log:
        logs("analyze_published_models.log"),
    benchmark:
        benchmarks("analyze_published_models.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
        runtime=grow(20),
    conda:
        ENV
    script:
        "../scripts/analyze_published_models.py"


rule figure_accuracy:
    input:
        evaluations=expand(f"{DATA}/evaluation/{{session}}.csv", session=COMPACT_SESSIONS),
        members=member_files(),
        models=expand(f"{DATA}/compact/{{session}}/models.csv", session=COMPACT_SESSIONS),
    output:
        png=report(
            f"{DATA}/figures/fig1_accuracy.png",
            caption="../report/fig1_accuracy.rst",
            category="Figures",
            labels={"figure": "1: accuracy and size"},
        ),
        pdf=f"{DATA}/figures/fig1_accuracy.pdf",
    log:
        logs("figure_accuracy.log"),
    benchmark:
        benchmarks("figure_accuracy.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/figure_accuracy.py"


rule figure_synthesis:
    input:
        stimulus_sets=expand(f"{DATA}/synthesis/{{session}}/stimulus_set", session=COMPACT_SESSIONS),
        scores=expand(f"{DATA}/closed_loop/{{session}}/scores.csv", session=CLOSED_LOOP_SESSIONS),
        loops=expand(f"{DATA}/closed_loop/{{session}}/session.nc", session=CLOSED_LOOP_SESSIONS),
    output:
        png=report(
            f"{DATA}/figures/fig2_synthesis.png",
            caption="../report/fig2_synthesis.rst",
            category="Figures",
            labels={"figure": "2: synthesised images and the closed loop"},
        ),
        pdf=f"{DATA}/figures/fig2_synthesis.pdf",
    log:
        logs("figure_synthesis.log"),
    benchmark:
        benchmarks("figure_synthesis.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/figure_synthesis.py"


rule figure_compressibility:
    input:
        table=f"{DATA}/analysis/filters_per_layer.csv",
        early_filters=f"{DATA}/analysis/early_filters.nc",
    output:
        png=report(
            f"{DATA}/figures/fig3_compressibility.png",
            caption="../report/fig3_compressibility.rst",
            category="Figures",
            labels={"figure": "3: compressibility and the consolidation step"},
        ),
        pdf=f"{DATA}/figures/fig3_compressibility.pdf",
    params:
        initial_filters=config["compact"]["filters"],
    log:
        logs("figure_compressibility.log"),
    benchmark:
        benchmarks("figure_compressibility.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/figure_compressibility.py"


rule figure_dots:
    input:
        selectivity=f"{DATA}/analysis/dot_selectivity.csv",
        tuning=f"{DATA}/analysis/dot_tuning.csv",
        ablation=f"{DATA}/analysis/dot_ablation.csv",
        stimulus_sets=expand(f"{DATA}/synthesis/{{session}}/stimulus_set", session=COMPACT_SESSIONS),
    output:
        png=report(
            f"{DATA}/figures/fig4_dots.png",
            caption="../report/fig4_dots.rst",
            category="Figures",
            labels={"figure": "4: a dot detector"},
        ),
        pdf=f"{DATA}/figures/fig4_dots.pdf",
    params:
        threshold=config["analysis"]["dot_threshold"],
    log:
        logs("figure_dots.log"),
    benchmark:
        benchmarks("figure_dots.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/figure_dots.py"


rule figure_published_models:
    input:
        table=f"{DATA}/analysis/filters_per_layer.csv",
        early_filters=f"{DATA}/analysis/early_filters.nc",
        selectivity=f"{DATA}/analysis/dot_selectivity.csv",
        published_table=rules.analyze_published_models.output.table,
        published_early_filters=rules.analyze_published_models.output.early_filters,
        published_selectivity=rules.analyze_published_models.output.selectivity,
    output:
        png=report(
            f"{DATA}/figures/published_models.png",
            caption="../report/published_models.rst",
            category="Figures",
            labels={"figure": "the paper's own compact models beside this pipeline's"},
        ),
        pdf=f"{DATA}/figures/published_models.pdf",
    params:
        threshold=config["analysis"]["dot_threshold"],
    log:
        logs("figure_published_models.log"),
    benchmark:
        benchmarks("figure_published_models.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/figure_published_models.py"


rule figure_published_check:
    input:
        scores=expand(f"{DATA}/closed_loop/{{session}}/published_check_scores.csv", session=PUBLISHED_CHECK_SESSIONS),
        adversarial=expand(
            f"{DATA}/closed_loop/{{session}}/published_check_adversarial.csv", session=PUBLISHED_CHECK_SESSIONS
        ),
    output:
        png=report(
            f"{DATA}/figures/published_check.png",
            caption="../report/published_check.rst",
            category="Figures",
            labels={"figure": "synthesised images shown to the published models"},
        ),
        pdf=f"{DATA}/figures/published_check.pdf",
    log:
        logs("figure_published_check.log"),
    benchmark:
        benchmarks("figure_published_check.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/figure_published_check.py"


# The report's other figures: what a lab looks at beside the paper's four.


rule figure_predictions:
    input:
        evaluations=expand(f"{DATA}/evaluation/{{session}}.csv", session=TEST_SESSIONS),
        datasets=session_datasets(TEST_SESSIONS),
        ensemble=expand(f"{DATA}/ensemble/predictions/{{session}}.nc", session=TEST_SESSIONS),
        compact=expand(f"{DATA}/compact/{{session}}/predictions.nc", session=COMPACT_SESSIONS),
    output:
        grid_png=report(
            f"{DATA}/figures/predictions.png",
            caption="../report/predictions.rst",
            category="Accuracy and training",
            labels={"figure": "held-out predictions, neuron by neuron"},
        ),
        grid_pdf=f"{DATA}/figures/predictions.pdf",
        ceiling_png=report(
            f"{DATA}/figures/noise_ceiling.png",
            caption="../report/noise_ceiling.rst",
            category="Accuracy and training",
            labels={"figure": "accuracy against each neuron's noise ceiling"},
        ),
        ceiling_pdf=f"{DATA}/figures/noise_ceiling.pdf",
    log:
        logs("figure_predictions.log"),
    benchmark:
        benchmarks("figure_predictions.tsv")
    threads: 1
    resources:
        mem_mb=grow(4000),
    conda:
        ENV
    script:
        "../scripts/figure_predictions.py"


rule figure_training_curves:
    input:
        members=member_files(),
    output:
        png=report(
            f"{DATA}/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Accuracy and training",
            labels={"figure": "the ensemble's training curves"},
        ),
        pdf=f"{DATA}/figures/training_curves.pdf",
    log:
        logs("figure_training_curves.log"),
    benchmark:
        benchmarks("figure_training_curves.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/figure_training_curves.py"


rule figure_compact_models:
    input:
        models=expand(f"{DATA}/compact/{{session}}/models.csv", session=COMPACT_SESSIONS),
        stimulus_sets=expand(f"{DATA}/synthesis/{{session}}/stimulus_set", session=COMPACT_SESSIONS),
        evaluations=expand(f"{DATA}/evaluation/{{session}}.csv", session=COMPACT_SESSIONS),
    output:
        pages=report(
            directory(f"{DATA}/figures/compact_models"),
            patterns=["{session}/{neuron}.png"],
            caption="../report/compact_model.rst",
            category="Compact models",
            subcategory="session {session}",
            labels={"neuron": "{neuron}"},
        ),
    log:
        logs("figure_compact_models.log"),
    benchmark:
        benchmarks("figure_compact_models.tsv")
    threads: 1
    resources:
        mem_mb=grow(2000),
    conda:
        ENV
    script:
        "../scripts/figure_compact_models.py"
