"""The Teams app package: appPackage/ with the bot's app id filled in, zipped for upload to Teams.

`build_package(app_id, out)` writes a zip with manifest.json, en.json, color.png and outline.png at its
root — the layout Teams (admin center, Developer Portal, "Upload a custom app") expects. The committed
appPackage/manifest.json carries the placeholder {{APP_ID}} wherever the Microsoft App ID of the bot
registration belongs (the app id and bots[0].botId; webApplicationInfo.id too, should it be added);
every occurrence is replaced, and a placeholder left over is an error.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parent.parent / "appPackage"
FILES = ("manifest.json", "en.json", "color.png", "outline.png")
PLACEHOLDER = "{{APP_ID}}"
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same input gives the same zip byte for byte


class PackageError(ValueError):
    """A bad app id or a broken appPackage/ folder; the message says which."""


def check_app_id(app_id: str) -> str:
    """The app id as Teams wants it (a GUID like 00000000-0000-0000-0000-000000000000), lower-cased."""
    text = app_id.strip() if isinstance(app_id, str) else ""
    if not _GUID.fullmatch(text):
        raise PackageError(f"app id must be a GUID such as 1b4e28ba-2fa1-11d2-883f-0016d3cca427 "
                           f"(the bot registration's Microsoft App ID), got {app_id!r}")
    if uuid.UUID(text).int == 0:
        raise PackageError("app id 00000000-0000-0000-0000-000000000000 is not a real Microsoft App ID")
    return text.lower()


def _fill(node: Any, app_id: str) -> Any:
    if isinstance(node, str):
        return node.replace(PLACEHOLDER, app_id)
    if isinstance(node, dict):
        return {key: _fill(value, app_id) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(value, app_id) for value in node]
    return node


def filled_manifest(app_id: str, source: Path = SOURCE) -> dict[str, Any]:
    """appPackage/manifest.json with the app id in every {{APP_ID}} place (the id is checked first)."""
    app_id = check_app_id(app_id)
    path = source / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackageError(f"{path} is missing: build the package from a checkout of the project") from None
    except json.JSONDecodeError as exc:
        raise PackageError(f"{path}: not valid JSON: {exc}") from None
    if PLACEHOLDER not in json.dumps(manifest):
        raise PackageError(f"{path}: no {PLACEHOLDER} placeholder to fill in")
    filled = _fill(manifest, app_id)
    if "{{" in json.dumps(filled, ensure_ascii=False):
        raise PackageError(f"{path}: a placeholder other than {PLACEHOLDER} is left")
    return filled


def build_package(app_id: str, out: Path, *, source: Path = SOURCE) -> Path:
    """Write the Teams app package for `app_id` to `out` (a .zip) and return its path."""
    manifest = filled_manifest(app_id, source)
    missing = [name for name in FILES[1:] if not (source / name).is_file()]
    if missing:
        raise PackageError(f"{source}: missing {', '.join(missing)}")
    referenced = {manifest["icons"]["color"], manifest["icons"]["outline"],
                  *(lang["file"] for lang in manifest.get("localizationInfo", {}).get("additionalLanguages", []))}
    if referenced - set(FILES):
        raise PackageError(f"manifest.json refers to {', '.join(sorted(referenced - set(FILES)))}, "
                           f"which the package does not hold")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    contents = {"manifest.json": (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8")}
    contents.update({name: (source / name).read_bytes() for name in FILES[1:]})
    # Write next to the target and rename, so a failed run never leaves half a zip under the real name.
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in FILES:
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, contents[name])
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a package is not a secret
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
