# Path helpers and input functions shared by the rule files (no rules here).
import functools
import re

from compactcortex.config import session_roles, sorted_keys
from compactcortex.io.compression_plan import read_plan
from compactcortex.io.cowley2023 import cowley_paths, published_models
from compactcortex.io.nwb import session_nwb_files
from compactcortex.resources import (
    UNKNOWN_SESSION_IMAGES,
    compression_resources,
    feature_resources,
    for_attempt,
    member_resources,
    stimulus_size,
    synthesis_resources,
    teacher_resources,
)

DATA = f"results/{config['dataset']}"
SOURCE = config["source"]
SESSIONS = list(session_roles(config))
ROLES = session_roles(config)
TRAIN_SESSIONS = [session for session in SESSIONS if ROLES[session] == "train"]
VALIDATION_SESSION = next(session for session in SESSIONS if ROLES[session] == "validation")
TEST_SESSIONS = [session for session in SESSIONS if ROLES[session] == "test"]
FIT_HALF_SESSIONS = TEST_SESSIONS if config["ensemble"]["test_fit_halves"] else []  # lend the core their fit halves
MEMBERS = list(range(config["ensemble"]["members"]))
CANDIDATE_POOL = "candidate_pool"
COMPACT_SESSIONS = config["compact"]["sessions"] or TEST_SESSIONS  # the test sessions whose neurons are compressed
ENV = "../../envs/compactcortex.yaml"


wildcard_constraints:
    session="|".join(re.escape(session) for session in SESSIONS),
    image_set="|".join(re.escape(name) for name in [*SESSIONS, CANDIDATE_POOL]),
    chunk=r"chunk\d+",
    member=r"\d+",


def grow(value):
    """A resource (a number, or a function of the wildcards) asked for more on every retry of the job."""

    def resource(wildcards, attempt):
        return for_attempt(value(wildcards) if callable(value) else value, attempt)

    return resource


def logs(path):
    """A job's log, under results/<dataset>/logs/ (wildcards in braces, as in any path of a rule)."""
    return f"{DATA}/logs/{path}"


def benchmarks(path):
    """A job's benchmark (time and memory), under results/<dataset>/benchmarks/."""
    return f"{DATA}/benchmarks/{path}"


def session_dataset(session="{session}"):
    """A session's dataset (the preprocessed recording): of the rule's ``{session}`` wildcard by default."""
    return f"{DATA}/sessions/{session}.nc"


def session_datasets(sessions=SESSIONS):
    return [session_dataset(session) for session in sessions]


def other_session_datasets(wildcards):
    """The datasets of every other session, where the session's distillation pool draws from them."""
    if not config["compact"]["pool"]["other_sessions"]:
        return []
    return session_datasets([session for session in SESSIONS if session != wildcards.session])


def recording_nwb(wildcards):
    """The NWB file a session is preprocessed from: simulated here, or the user's own."""
    if SOURCE["kind"] == "virtual_lab":
        return f"{DATA}/raw/{wildcards.session}.nwb"
    return str(users_nwb_files()[wildcards.session])


@functools.cache
def users_nwb_files():
    """Each session's NWB file under source.path (its file in sessions, or source.pattern and source.match_by),
    found once per run: a tree is searched, and with match_by session_id its files opened, once."""
    files = {session["id"]: session.get("file") for session in config["sessions"]}
    return session_nwb_files(SOURCE["path"], files, pattern=SOURCE["pattern"], match_by=SOURCE["match_by"])


def section(*keys):
    """A config section as a rule's params (keys sorted: reordering the YAML reruns nothing), without its threads:
    a job's threads come through ``threads:`` and change none of its outputs, so changing them reruns nothing."""
    value = config
    for key in keys:
        value = value[key]
    return sorted_keys(_without_threads(value))


def session_area(wildcards):
    """The brain area the config gives the session (None: read from the recording)."""
    return next(entry.get("area") for entry in config["sessions"] if entry["id"] == wildcards.session)


def lab_design(wildcards):
    """The simulated session's design: that of its role."""
    return section("virtual_lab", "roles", ROLES[wildcards.session])


def lab_settings():
    """The lab-wide settings (everything but the per-role designs)."""
    return {key: value for key, value in section("virtual_lab").items() if key != "roles"}


def cowley_inputs(wildcards):
    return {name: str(path) for name, path in cowley_paths(SOURCE["path"], wildcards.session).items()}


def cowley_monkey(wildcards):
    return SOURCE["monkey"].get(wildcards.session, "unknown")


def images_of(wildcards):
    """The file holding an image set's images: a session dataset or the active-learning candidate pool."""
    if wildcards.image_set == CANDIDATE_POOL:
        return f"{DATA}/active_learning/{CANDIDATE_POOL}.nc"
    return session_dataset(wildcards.image_set)


def feature_layers_of(wildcards):
    """Test sessions get every layer (their task-driven baseline chooses among them); the other sessions and the
    pools only the ensemble's (the backbone then stops there)."""
    if wildcards.image_set in TEST_SESSIONS:
        return None
    return [config["features"]["layer"]]


def compression_settings():
    """What a compression job's models depend on: not which sessions are compressed, nor how the neurons are
    split into jobs (changing those reruns no model)."""
    return {
        k: v for k, v in section("compact").items() if k not in ("sessions", "neurons_per_job", "image_cache_mb")
    }


def compression_chunks(wildcards):
    """The names of a session's compression jobs, known once its plan (a checkpoint) exists."""
    return sorted(read_plan(checkpoints.plan_compression.get(session=wildcards.session).output.plan))


def compact_chunk_dirs(wildcards):
    """The compression jobs' model folders of a session."""
    return expand(f"{DATA}/compact/{wildcards.session}/models/{{chunk}}", chunk=compression_chunks(wildcards))


def evaluation_inputs(wildcards):
    """Every model of a test session that is evaluated: the published compact models where the data have them."""
    models = {
        "ensemble": f"{DATA}/ensemble/predictions/{wildcards.session}.nc",
        "task_driven": f"{DATA}/task_driven/predictions/{wildcards.session}.nc",
    }
    if wildcards.session in COMPACT_SESSIONS:
        models["compact"] = f"{DATA}/compact/{wildcards.session}/predictions.nc"
    if wildcards.session in PUBLISHED_SESSIONS:
        models["published_compact"] = f"{DATA}/compact/published/{wildcards.session}.nc"
    return models


def published_sessions():
    """Test sessions with published compact models (the Cowley et al. data only)."""
    if SOURCE["kind"] != "cowley2023":
        return []
    have = {session for session, _ in published_models(SOURCE["path"])}
    return [session for session in TEST_SESSIONS if session in have]


PUBLISHED_SESSIONS = published_sessions()
PUBLISHED_CHECK_SESSIONS = [s for s in COMPACT_SESSIONS if s in PUBLISHED_SESSIONS]  # synthesis shown to their models


def gpus(device):
    """GPUs a job asks the scheduler for."""
    return 1 if device == "cuda" else 0


def member_files():
    return expand(f"{DATA}/ensemble/members/member{{member}}.pt", member=MEMBERS)


def truth_of(session):
    """The simulated neuron's truth, where the data are simulated."""
    return [f"{DATA}/ground_truth/{session}.nc"] if SOURCE["kind"] == "virtual_lab" else []


def pool_image_size():
    return stimulus_size(config)


def synthesis_chunk_files(wildcards):
    """One synthesised image set per compression job of the session."""
    return expand(f"{DATA}/synthesis/{wildcards.session}/chunks/{{chunk}}.nc", chunk=compression_chunks(wildcards))


def closed_loop_sessions():
    """Sessions whose stimulus set has been shown: all compressed sessions in the virtual lab (it records them
    itself); elsewhere those whose recording the config names (closed_loop.recordings)."""
    if SOURCE["kind"] == "virtual_lab":
        return list(COMPACT_SESSIONS)
    return [session for session in COMPACT_SESSIONS if session in config["closed_loop"]["recordings"]]


CLOSED_LOOP_SESSIONS = closed_loop_sessions()


def closed_loop_recording(wildcards):
    """The NWB file of the session that showed the stimulus set: simulated here, or the lab's own."""
    if SOURCE["kind"] == "virtual_lab":
        return f"{DATA}/closed_loop/{wildcards.session}/recording.nwb"
    return config["closed_loop"]["recordings"][wildcards.session]


def closed_loop_truth(wildcards):
    """The true rates of the closed-loop session, where the data are simulated."""
    return [f"{DATA}/closed_loop/{wildcards.session}/truth.nc"] if SOURCE["kind"] == "virtual_lab" else []


def images_per_session(session):
    """A session's image count where the config knows it (the virtual lab's designs), else a generous guess."""
    if SOURCE["kind"] != "virtual_lab":
        return UNKNOWN_SESSION_IMAGES
    return sum(config["virtual_lab"]["roles"][ROLES[session]]["images"].values())


COMPRESSION_RESOURCES = compression_resources(config["compact"], pool_image_size())
TEACHER_RESOURCES = teacher_resources(config["features"], config["compact"])
SYNTHESIS_RESOURCES = synthesis_resources(config["synthesis"], config["compact"], pool_image_size())
MEMBER_RESOURCES = member_resources(
    config["ensemble"],
    sum(images_per_session(session) for session in TRAIN_SESSIONS)
    + sum(images_per_session(session) // 2 for session in FIT_HALF_SESSIONS),
    config["features"]["input_size"] // 8,
)


def feature_job_resources(wildcards):
    """Backbone features of one image set: its image count from the config."""
    if wildcards.image_set == CANDIDATE_POOL:
        n_images = sum(config["active_learning"]["pool"]["images"].values())
    else:
        n_images = images_per_session(wildcards.image_set)
    return feature_resources(config["features"], n_images)


def _without_threads(value):
    if isinstance(value, dict):
        return {key: _without_threads(item) for key, item in value.items() if key != "threads"}
    return value


def outputs_config():
    """The config the outputs depend on, for the MANIFEST: all of it but the threads (which change no output)."""
    return sorted_keys(_without_threads(config))
