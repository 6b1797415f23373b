"""The station registry: the YAML file, `${VAR}` references, the shorthand variables, and resolving collections."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rs_ondemand.config import Settings
from rs_ondemand.errors import ConfigurationError, InvalidInputError
from rs_ondemand.stations.registry import load_stations_file

SECRET = "s3cr3t-value-never-shown"
GOOD = """
stations:
  ins:
    kind: cadip
    api: odata
    url: https://ins.example/odata/v1
    token_url: https://ins.example/oauth2/token
    client_id: ${INS_CLIENT_ID}
    client_secret: ${INS_CLIENT_SECRET}
    username: ${INS_USER}
    password: ${INS_PASSWORD}
    max_concurrent_downloads: 2
    redirect_hosts: [downloads.example]
  mti:
    kind: cadip
    api: odata
    url: https://mti.example/
    api_key: ${MTI_KEY}
  adgs:
    kind: auxip
    api: stac
    url: https://rs-server.example/auxip
    odata_url: https://adgs.example/odata/v1
    api_key: ${MTI_KEY}
collections:
  s1_ins: {station: ins, satellites: [S1A, S1C]}
  s1_mti: {station: mti}
  aux: {station: adgs, stac_collection: "s1:aux"}
"""
ENV = {"INS_CLIENT_ID": "id", "INS_CLIENT_SECRET": SECRET, "INS_USER": "me", "INS_PASSWORD": SECRET, "MTI_KEY": SECRET}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stations.yaml"
    path.write_text(text)
    return path


def test_a_good_file(tmp_path: Path) -> None:
    registry = load_stations_file(write(tmp_path, GOOD), ENV)
    ins = registry.stations["ins"]
    assert ins.password is not None and ins.password.get_secret_value() == SECRET
    assert SECRET not in repr(registry) and SECRET not in str(registry.model_dump())
    assert (ins.max_concurrent_downloads, ins.redirect_hosts, ins.auth) == (2, ("downloads.example",), "oauth2")
    assert registry.stations["mti"].auth == "api-key"
    target = registry.resolve("cadip", "s1_ins")
    assert (target.station.name, target.satellites) == ("ins", ("S1A", "S1C"))
    assert registry.resolve("auxip", "aux").stac_collection == "s1:aux"
    assert registry.resolve("auxip", None).station.name == "adgs"  # the only AUXIP station
    assert registry.for_download("https://ins.example/odata/v1/Files(1)/$value").name == "ins"  # type: ignore[union-attr]
    assert registry.for_download("https://adgs.example/odata/v1/Products(1)/$value").name == "adgs"  # type: ignore[union-attr]
    assert registry.for_download("https://ins.example/odata/v1x/Files(1)/$value") is None
    assert sorted(registry.secrets()) == [SECRET] * 4


@pytest.mark.parametrize(
    ("kind", "collection", "message"),
    [
        ("cadip", "nope", "unknown CADIP collection 'nope' in stations file .* \\(known: s1_ins, s1_mti\\)"),
        ("prip", "s1_ins", "unknown PRIP collection 's1_ins'"),
        ("cadip", None, "2 CADIP stations in .*: name a collection"),
        ("prip", None, "no PRIP stations in .*: configure one"),
    ],
)
def test_unknown_collections_are_refused(tmp_path: Path, kind: str, collection: str | None, message: str) -> None:
    registry = load_stations_file(write(tmp_path, GOOD), ENV)
    with pytest.raises(InvalidInputError, match=message):
        registry.resolve(kind, collection)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            (
                "kind: cadip\n    api: odata\n    url: https://ins",
                "kind: cadip\n    api: odata\n    colour: red\n    url: https://ins",
            ),
            "stations.ins.colour: Extra inputs are not permitted",
        ),
        (("${INS_PASSWORD}", "${NOT_SET_ANYWHERE}"), "stations.ins.password: \\$\\{NOT_SET_ANYWHERE\\} is not set"),
        (("{station: mti}", "{station: nowhere}"), "collections.s1_mti: unknown station 'nowhere'"),
        (
            ("max_concurrent_downloads: 2", "max_concurrent_downloads: 0"),
            "max_concurrent_downloads: Input should be greater",
        ),
        (("kind: auxip", "kind: lta"), "stations.adgs.kind: Input should be 'cadip', 'auxip' or 'prip'"),
        (("api_key: ${MTI_KEY}\n  adgs", "\n  adgs"), "stations.mti: Value error, an odata station needs token_url"),
        (("satellites: [S1A, S1C]", "satellites: [sentinel-1]"), "satellite 'sentinel-1' is not a code like S1A"),
        (("  mti:", "  MTI:"), "stations.MTI.name: String should match pattern"),
        (("collections:", "colections:"), "unknown keys colections"),
        (
            ("url: https://mti.example/", "url: https://ins.example/odata/v1"),
            "stations ins and mti share the download root",
        ),
        (("stations:\n", "stations: [\n"), "not valid YAML at line"),
    ],
)
def test_bad_files_are_refused_in_one_line_without_secrets(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    assert change[0] in GOOD
    with pytest.raises(ConfigurationError, match=message) as refused:
        load_stations_file(write(tmp_path, GOOD.replace(*change)), ENV)
    text = str(refused.value)
    assert "\n" not in text and SECRET not in text and text.startswith(f"stations file {tmp_path}")


def test_a_secret_in_a_wrongly_typed_field_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_stations_file(
            write(tmp_path, GOOD.replace("max_concurrent_downloads: 2", "max_concurrent_downloads: ${INS_PASSWORD}")),
            ENV,
        )
    assert SECRET not in str(refused.value) and "max_concurrent_downloads" in str(refused.value)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"stations file .*nowhere\.yaml: cannot be read"):
        load_stations_file(tmp_path / "nowhere.yaml", {})


def test_environment_overrides_the_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RS_STATIONS_FILE and the `${VAR}`s: the environment wins over the stack's env file."""
    stack_file, own_file = write(tmp_path, GOOD), tmp_path / "own.yaml"
    own_file.write_text(GOOD.replace("max_concurrent_downloads: 2", "max_concurrent_downloads: ${SLOTS}"))
    env_file = tmp_path / "env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in ENV.items()) + f"RS_STATIONS_FILE={stack_file}\nSLOTS=3\nRS_TASK_QUEUE=stack\n"
    )
    for key in [*ENV, "RS_STATIONS_FILE", "SLOTS", "RS_TASK_QUEUE"]:
        monkeypatch.delenv(key, raising=False)
    assert Settings.load(env_file).station_registry().stations["ins"].max_concurrent_downloads == 2
    monkeypatch.setenv("RS_STATIONS_FILE", str(own_file))
    monkeypatch.setenv("SLOTS", "5")
    monkeypatch.setenv("RS_TASK_QUEUE", "mine")
    settings = Settings.load(env_file)
    assert settings.worker.task_queue == "mine"
    assert settings.station_registry().stations["ins"].max_concurrent_downloads == 5


def test_without_a_file_the_shorthand_variables_make_one_station_per_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / "env"
    env_file.write_text(
        "CADIP_URL=http://sim/cadip/stac\nCADIP_ODATA_URL=http://sim/cadip\nCADIP_TOKEN_URL=http://sim/cadip/oauth2/token\n"
        "CADIP_USERNAME=u\nCADIP_PASSWORD=p\nCADIP_MAX_CONCURRENT_DOWNLOADS=3\nPRIP_URL=http://sim/prip/stac\n"
    )
    for key in [k for k in os.environ if k.startswith(("CADIP_", "AUXIP_", "PRIP_"))] + ["RS_STATIONS_FILE"]:
        monkeypatch.delenv(key, raising=False)  # another test's stack may have set them
    registry = Settings.load(env_file).station_registry()
    assert sorted(registry.stations) == ["cadip", "prip"]
    assert registry.stations["cadip"].max_concurrent_downloads == 3
    assert registry.resolve("cadip", "anything").stac_collection == "anything"  # the facade says what exists
    assert registry.for_download("http://sim/cadip/Files(1)/$value").name == "cadip"  # type: ignore[union-attr]
    with pytest.raises(InvalidInputError, match="no AUXIP stations"):
        registry.resolve("auxip", None)


def test_a_reference_may_have_a_default(tmp_path: Path) -> None:
    text = GOOD.replace("max_concurrent_downloads: 2", "max_concurrent_downloads: ${INS_SLOTS:-6}")
    assert load_stations_file(write(tmp_path, text), ENV).stations["ins"].max_concurrent_downloads == 6
    assert (
        load_stations_file(write(tmp_path, text), ENV | {"INS_SLOTS": "1"}).stations["ins"].max_concurrent_downloads
        == 1
    )
