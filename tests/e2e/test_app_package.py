"""The Teams app package: manifest and localization file against Microsoft's own JSON schemas, the
icons against Teams' size and colour rules, and `build_package` end to end.

The schemas come from the npm package @microsoft/app-manifest (pinned below), which ships every
published Teams manifest schema under build/json-schemas/teams/v<version>/. It is fetched once with npm
into a cache outside the repo and used offline from then on: a schema URL (the `$schema` of a file, or a
remote `$ref`) is read from the package's files, never from the network. Without npm the schema tests
are skipped, with the reason; the icon and zip tests run anyway.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot.package import FILES, PackageError, build_package, check_app_id

APP_MANIFEST_NPM = "@microsoft/app-manifest@1.1.2"
SCHEMA_HOST = "developer.microsoft.com"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / "appPackage"
TEST_APP_ID = "6f1c3c5e-8f4b-4a52-9d7e-2b1f0c9a4d13"
WHITE = (255, 255, 255)
DRAFT4_URI = "http://json-schema.org/draft-04/schema#"


# -- the schemas, from the npm package, offline ------------------------------------------------------
def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:
            base = tempfile.gettempdir()
    return Path(base) / "kombit-implementeringsassistent"


def _fetch_npm_package(spec: str, target: Path) -> None:
    """`npm pack` the package's tarball (no dependencies, no install scripts) and unpack it at target."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed, so the official Teams JSON schemas ({spec}) cannot be fetched: "
                    f"manifest.json and en.json were NOT validated against them. Install Node.js/npm to run these tests.")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false",
               "npm_config_audit": "false", "npm_config_loglevel": "error"}
        try:
            done = subprocess.run([npm, "pack", spec, "--pack-destination", tmp], cwd=tmp, env=env,
                                  capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`npm pack {spec}` took over 300 s (is the npm registry reachable?)")
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or len(tarballs) != 1:
            pytest.fail(f"`npm pack {spec}` failed (exit {done.returncode}), so the Teams schemas could not be "
                        f"fetched:\n{done.stderr.strip() or done.stdout.strip()}")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarballs[0]) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(unpacked, filter="data")
            else:  # Python before 3.11.4: check the paths ourselves
                for member in archive.getmembers():
                    if not (member.isfile() or member.isdir()) or member.name.startswith("/") or ".." in member.name.split("/"):
                        pytest.fail(f"unexpected entry {member.name!r} in the {spec} tarball")
                archive.extractall(unpacked)
        try:
            os.replace(unpacked / "package", target)  # atomic: a parallel run either sees all or nothing
        except OSError:
            if not target.is_dir():
                raise


@pytest.fixture(scope="module")
def schema_root() -> Path:
    """build/ of the npm package: the schema of URL https://developer.microsoft.com/<path> is build/<path>."""
    for module in ("jsonschema", "referencing"):  # referencing comes with jsonschema 4.18 and later
        pytest.importorskip(module, reason="jsonschema>=4.18 is a test dependency (pip install -e '.[test]'): "
                                           "manifest.json and en.json were NOT validated")
    package = _cache_root() / APP_MANIFEST_NPM.replace("/", "+")
    if not (package / "package.json").is_file():
        _fetch_npm_package(APP_MANIFEST_NPM, package)
    root = package / "build"
    assert (root / "json-schemas" / "teams").is_dir(), f"{APP_MANIFEST_NPM} has no build/json-schemas/teams/"
    return root


def _schema_file(root: Path, url: str) -> Path:
    """The package file for a schema URL; anything else is an error (the tests never go online)."""
    parts = urlsplit(url)
    # developer.microsoft.com serves the same file with a locale in front: /en-us/json-schemas/...
    path = re.sub(r"^/[a-z]{2}(?:-[a-z]{2})?(?=/json-schemas/)", "", parts.path, flags=re.IGNORECASE)
    if parts.scheme != "https" or parts.hostname != SCHEMA_HOST or not path.startswith("/json-schemas/"):
        raise LookupError(f"{url} is not a schema shipped in {APP_MANIFEST_NPM}, and the tests stay offline")
    file = (root / path.lstrip("/")).resolve()
    if root.resolve() not in file.parents or not file.is_file():
        raise LookupError(f"{url}: {APP_MANIFEST_NPM} has no {path.lstrip('/')}")
    return file


def _load_schema(root: Path, url: str) -> dict:
    return json.loads(_schema_file(root, url).read_text(encoding="utf-8-sig"))


def _validator(root: Path, url: str):
    """A validator for the schema at url, with every $ref resolved from the package files.

    The Teams schemas say draft-04, but Microsoft's own validator (Ajv 8 with ajv-draft-04, in the same
    npm package) goes beyond it, and so does this one: it enforces draft-06's `const` (manifestVersion)
    and applies the keywords beside a `$ref` (e.g. maxLength next to $ref in the localization schema),
    which plain draft-04 ignores. Formats are checked as Ajv is set up there: uri, email, regex.
    """
    import jsonschema
    import referencing
    import referencing.exceptions
    from referencing.jsonschema import DRAFT4

    def contents(uri: str) -> dict:
        schema = _load_schema(root, uri)
        if schema.get("$schema", DRAFT4_URI) in (DRAFT4_URI, DRAFT4_URI.rstrip("#")):
            # Else jsonschema would switch back to the plain Draft4Validator (no `const`) at every $ref.
            schema.pop("$schema", None)
        return schema

    def retrieve(uri: str):
        try:
            return referencing.Resource.from_contents(contents(uri), default_specification=DRAFT4)
        except LookupError as exc:
            raise referencing.exceptions.NoSuchResource(ref=uri) from exc

    schema = contents(url)
    registry = referencing.Registry(retrieve=retrieve).with_resource(
        url, referencing.Resource.from_contents(schema, default_specification=DRAFT4))
    formats = jsonschema.FormatChecker(formats=())
    formats.checks("uri")(lambda value: not isinstance(value, str) or bool(urlsplit(value).scheme))
    formats.checks("email")(lambda value: not isinstance(value, str) or bool(re.fullmatch(r"[^@\s]+@[^@\s]+", value)))
    formats.checks("regex", raises=re.error)(lambda value: not isinstance(value, str) or bool(re.compile(value)))
    base = jsonschema.Draft4Validator
    draft4_as_ajv = jsonschema.validators.create(
        meta_schema=base.META_SCHEMA, validators={**base.VALIDATORS, "const": jsonschema.Draft6Validator.VALIDATORS["const"]},
        type_checker=base.TYPE_CHECKER, format_checker=formats, id_of=DRAFT4.id_of,
        applicable_validators=lambda subschema: subschema.items())  # no ignore_ref_siblings
    cls = jsonschema.validators.validator_for(schema, default=draft4_as_ajv)  # a later draft would say so
    # The root is a $ref to the URL, so relative $refs inside the schema resolve against the URL.
    return cls({"$ref": url}, registry=registry, format_checker=formats)


def _errors(validator, instance) -> list[str]:
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                  for e in validator.iter_errors(instance))


def _read_json(name: str) -> dict:
    return json.loads((PACKAGE_DIR / name).read_text(encoding="utf-8"))


@pytest.fixture
def built(tmp_path) -> zipfile.ZipFile:
    path = build_package(TEST_APP_ID, tmp_path / "out" / "app.zip")
    with zipfile.ZipFile(path) as archive:
        yield archive


def test_built_manifest_is_valid_against_the_official_schema(schema_root, built):
    manifest = json.loads(built.read("manifest.json"))
    url = manifest["$schema"]
    assert url == f"https://developer.microsoft.com/json-schemas/teams/v{manifest['manifestVersion']}/MicrosoftTeams.schema.json"
    assert _errors(_validator(schema_root, url), manifest) == []


def test_english_localization_is_valid_against_the_official_schema(schema_root):
    manifest, english = _read_json("manifest.json"), _read_json("en.json")
    url = english["$schema"]
    assert url == manifest["$schema"].replace("MicrosoftTeams.schema.json", "MicrosoftTeams.Localization.schema.json")
    assert _errors(_validator(schema_root, url), english) == []


def test_the_validator_is_not_vacuous(schema_root):
    manifest = json.loads(json.dumps(_read_json("manifest.json")).replace("{{APP_ID}}", TEST_APP_ID))
    validator = _validator(schema_root, manifest["$schema"])
    broken = {**manifest, "id": "not-a-guid", "manifestVersion": "1.0", "colour": "#fff",
              "bots": [{**manifest["bots"][0], "scopes": ["everywhere"]}]}
    errors = "\n".join(_errors(validator, broken))
    for expected in ("id: 'not-a-guid' does not match", "manifestVersion: ", "'colour' was unexpected",
                     "bots/0/scopes/0: 'everywhere' is not one of"):
        assert expected in errors, errors
    english = {**_read_json("en.json"), "name.short": "x" * 31, "bots[0].commands[0].title": "?"}
    errors = "\n".join(_errors(_validator(schema_root, english["$schema"]), english))
    assert "name.short: " in errors and "bots[0].commands[0].title" in errors, errors


def test_schema_urls_never_go_online(schema_root):
    with pytest.raises(LookupError):
        _schema_file(schema_root, "https://example.com/json-schemas/teams/v1.24/MicrosoftTeams.schema.json")
    localized = "https://developer.microsoft.com/en-us/json-schemas/teams/v1.24/MicrosoftTeams.schema.json"
    assert _schema_file(schema_root, localized).is_file()


# -- the manifest's content ----------------------------------------------------------------------------
def _at(node, key: str):
    """The manifest value at a localization key such as bots[0].commandLists[1].commands[2].title."""
    for name, index in re.findall(r"([A-Za-z]+)(?:\[(\d+)\])?", key):
        node = node[name]
        if index:
            node = node[int(index)]
    return node


def test_manifest_is_danish_first_with_english_for_every_string():
    manifest, english = _read_json("manifest.json"), _read_json("en.json")
    assert manifest["localizationInfo"] == {"defaultLanguageTag": "da",
                                            "additionalLanguages": [{"languageTag": "en", "file": "en.json"}]}
    assert manifest["name"]["short"] == "Implementeringsassistent"
    assert manifest["name"]["full"] == "KOMBITs implementeringsassistent – Implementeringsmodellen 2.0"
    for phase in ("Opstart", "Forberedelse", "Ibrugtagning", "Forankring", "KLIK"):
        assert phase in manifest["description"]["full"]
    [bot] = manifest["bots"]
    assert bot["botId"] == manifest["id"] == "{{APP_ID}}"
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    assert bot["supportsFiles"] is False and bot["isNotificationOnly"] is False
    assert sorted(s for lst in bot["commandLists"] for s in lst["scopes"]) == sorted(bot["scopes"])
    wanted = {"name.short", "name.full", "description.short", "description.full"}
    for i, commands in enumerate(lst["commands"] for lst in bot["commandLists"]):
        assert {"hjælp", "status", "hvad skal vi nu?", "tilmeld", "hvad betyder", "historik"} <= {c["title"] for c in commands}
        wanted |= {f"bots[0].commandLists[{i}].commands[{j}].{field}"
                   for j in range(len(commands)) for field in ("title", "description")}
        # The schema allows more, but Teams clients show command titles up to 32 and descriptions up to 128.
        assert all(len(c["title"]) <= 32 and len(c["description"]) <= 128 for c in commands)
    translated = set(english) - {"$schema"}
    assert translated == wanted  # every Danish string has its English one, and no key points nowhere
    for key in (k for k in translated if k.startswith("bots[0].")):
        assert len(english[key]) <= (32 if key.endswith(".title") else 128), key
        assert _at(manifest, key) != english[key] or english[key] == "status", f"{key} is not translated"
    assert manifest["validDomains"] == []
    assert all(u.startswith("https://www.kombit.dk") for k, u in manifest["developer"].items() if k.endswith("Url"))


# -- the icons, read without Pillow ------------------------------------------------------------------
def read_png(path: Path) -> tuple[int, int, int, list[tuple[int, ...]]]:
    """(width, height, colour type, pixels) of an 8-bit, non-interlaced PNG; checks every chunk's CRC."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"{path.name}: bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
        if kind == b"IEND":
            break
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", f"{path.name}: malformed PNG"
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    assert depth == 8 and channels and interlace == 0, f"{path.name}: only 8-bit grey/RGB(A), non-interlaced is read here"
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride, bpp = width * channels, channels
    rows, prev, pos = [], bytearray(stride), 0
    for _ in range(height):
        filt, line = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if filt == 1:
                line[i] = (line[i] + a) & 0xFF
            elif filt == 2:
                line[i] = (line[i] + b) & 0xFF
            elif filt == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
            else:
                assert filt == 0, f"{path.name}: unknown filter {filt}"
        rows.append(bytes(line))
        prev = line
    pixels = [tuple(row[x * channels:(x + 1) * channels]) for row in rows for x in range(width)]
    return width, height, ctype, pixels


def test_color_icon_is_a_192_pixel_png():
    width, height, _, _ = read_png(PACKAGE_DIR / "color.png")
    assert (width, height) == (192, 192)


def test_outline_icon_is_32_pixels_white_on_transparent():
    width, height, ctype, pixels = read_png(PACKAGE_DIR / "outline.png")
    assert (width, height) == (32, 32)
    assert ctype in (4, 6), "the outline icon needs an alpha channel"
    rgba = [(p[0], p[0], p[0], p[1]) if ctype == 4 else p for p in pixels]
    offending = [(i % 32, i // 32, p) for i, p in enumerate(rgba) if p[3] != 0 and p[:3] != WHITE]
    assert offending == [], f"pixels neither fully transparent nor white (x, y, rgba): {offending[:5]}"
    visible = sum(1 for p in rgba if p[3] != 0)
    assert 0.1 * 32 * 32 < visible < 0.7 * 32 * 32, "the outline should show a symbol on a transparent background"


def test_png_reader_agrees_with_a_known_image(tmp_path):
    # 2×1 RGBA: one white opaque pixel, one transparent; written with the Sub filter.
    raw = b"\x01" + bytes([255, 255, 255, 255, 1, 1, 1, 1])  # Sub: second pixel = first + delta
    ihdr = struct.pack(">IIBBBBB", 2, 1, 8, 6, 0, 0, 0)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))  # noqa: E731
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path = tmp_path / "check.png"
    path.write_bytes(png)
    assert read_png(path) == (2, 1, 6, [(255, 255, 255, 255), (0, 0, 0, 0)])


# -- build_package -------------------------------------------------------------------------------------
def test_build_package_writes_exactly_the_four_files_with_the_app_id(built):
    assert sorted(built.namelist()) == sorted(FILES) and len(built.namelist()) == 4
    manifest = json.loads(built.read("manifest.json"))
    assert manifest["id"] == manifest["bots"][0]["botId"] == TEST_APP_ID
    assert "{{" not in built.read("manifest.json").decode("utf-8")
    for name in ("en.json", "color.png", "outline.png"):
        assert built.read(name) == (PACKAGE_DIR / name).read_bytes()


def test_build_package_is_reproducible_and_normalises_the_id(tmp_path):
    first = build_package(TEST_APP_ID.upper(), tmp_path / "a.zip")
    second = build_package(f"  {TEST_APP_ID}\n", tmp_path / "b.zip")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert json.loads(archive.read("manifest.json"))["id"] == TEST_APP_ID
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "b.zip"]  # no temp files left


@pytest.mark.parametrize("bad", ["", "not-a-guid", "6f1c3c5e8f4b4a529d7e2b1f0c9a4d13", f"{{{TEST_APP_ID}}}",
                                 f"urn:uuid:{TEST_APP_ID}", TEST_APP_ID + "0", TEST_APP_ID[:-1] + "g",
                                 "00000000-0000-0000-0000-000000000000"])
def test_a_non_guid_app_id_is_refused_with_a_clear_error(tmp_path, bad):
    out = tmp_path / "app.zip"
    with pytest.raises(PackageError, match=r"app id") as caught:
        build_package(bad, out)
    assert isinstance(caught.value, ValueError)  # the CLI's existing `except ValueError` reports it
    assert "GUID" in str(caught.value) or "not a real" in str(caught.value)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_check_app_id_message_names_the_bad_value():
    with pytest.raises(PackageError, match=r"app id must be a GUID .*got 'abc'"):
        check_app_id("abc")
