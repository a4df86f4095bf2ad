"""The config reader under attack: random sections, keys and values never crash it with anything
but its own clear ConfigError, and never run anything."""
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allseg.core.config import SCHEMA, load_config
from allseg.core.errors import ConfigError
from conftest import ROOT

MARKER = Path(tempfile.gettempdir()) / "allseg_fuzz_marker"
# Values that would create MARKER if anything evaluated or executed them.
ATTACKS = [f"__import__('os').system('touch {MARKER}')",
           f"open('{MARKER}', 'w').write('x')",
           "[x for x in ().__class__.__base__.__subclasses__()]",
           f"(lambda: open('{MARKER}', 'w'))()",
           "'%(image_width)s'", "${model:image_width}", "1e999999", "9" * 5000,
           "[" * 200 + "]" * 200, "True; import os"]

SEED_TEXT = (ROOT / "train_eval_infer.config").read_text(encoding="utf-8")
known_sections = st.sampled_from(list(SCHEMA))
known_keys = st.sampled_from(sorted({k for keys in SCHEMA.values() for k in keys}))
names = st.one_of(known_keys, st.text(min_size=1, max_size=20))
values = st.one_of(
    st.sampled_from(ATTACKS),
    st.text(max_size=40),
    st.integers().map(str), st.floats(allow_nan=True).map(repr),
    st.sampled_from(["True", "False", "None", "'auto'", '"relu"', "[1, 2]", "{'a': 1}", "b'x'"]),
)


def load_text(text):
    fd, name = tempfile.mkstemp(suffix=".config")
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogatepass") as handle:
        handle.write(text)
    try:
        return load_config(name)
    finally:
        os.unlink(name)


def loads_or_explains(text):
    """Either a loaded config or a ConfigError that names the file; anything else fails."""
    try:
        return load_text(text)
    except ConfigError as exc:
        assert ".config" in str(exc)  # names the file it is about
        return None
    finally:
        assert not MARKER.exists(), "a config value was executed"


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(st.tuples(st.one_of(known_sections, st.text(max_size=12)),
                          st.lists(st.tuples(names, values), max_size=8)), max_size=5))
def test_random_files_load_or_get_a_config_error(sections):
    text = "".join(f"[{section}]\n" + "".join(f"{key} = {value}\n" for key, value in items)
                   for section, items in sections)
    loads_or_explains(text)


@FUZZ
@given(st.data())
def test_one_bad_value_in_the_seed_config_is_named_with_its_section_and_key(data):
    lines = SEED_TEXT.splitlines()
    keyed = [i for i, line in enumerate(lines) if "=" in line and not line.startswith(";")]
    index = data.draw(st.sampled_from(keyed))
    key = lines[index].split("=")[0].strip()
    value = data.draw(values.filter(lambda v: "\n" not in v and "\r" not in v))
    lines[index] = f"{key} = {value}"
    section = next(line.strip("[]") for line in reversed(lines[:index]) if line.startswith("["))
    try:
        cfg = load_text("\n".join(lines) + "\n")
    except ConfigError as exc:
        assert f"[{section}] {key}" in str(exc)
    else:  # accepted: then the value has the type the schema asks for
        got = getattr(getattr(cfg, section), key)
        kind = SCHEMA[section][key].kind
        assert kind is object or isinstance(got, kind)
    assert not MARKER.exists()
