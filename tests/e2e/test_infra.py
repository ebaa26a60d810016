"""The infrastructure as code (m365agents.yml, infra/*.bicep, infra/azure.parameters.json, env/.env.dev), checked
offline: what can be checked without Azure, the Bicep CLI or a network.

Checked: the toolkit project file parses and uses only keys of the Agents Toolkit's yaml schema (the subset it
uses, transcribed from schema v1.11; the whole published schema too when M365AGENTS_YAML_SCHEMA names a copy of
it), its paths exist and every ${{VAR}} it or the parameters file uses is defined in env/.env.dev; the parameters
file sets only declared parameters and every required one; the Bicep files are structurally sound (brackets
balanced outside strings and comments, plausible API versions, module paths that exist, no secret literal,
@secure() on secret parameters); every variable of the README's configuration table is an app setting or named
below as left to its default on purpose; the app settings, evaluated with the committed parameters, pass the
bot's own start-up checks (Config.from_env); the Azure Bot is UserAssignedMSI with the identity's client id, has
the Teams channel and the /api/messages endpoint; the site's health check is /healthz; the port is the
Dockerfile's EXPOSE.

Where tree-sitter-language-pack<1 is installed, the Bicep files are also parsed with its Bicep grammar.

Not checked here: that the Bicep compiles (no Bicep CLI offline), that Azure accepts the resource properties,
and anything that needs a deployment (the Teams channel, the share mount, the image pull).
"""
from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from bot.config import Config

ROOT = Path(__file__).resolve().parents[2]
AGENTS_YML = ROOT / "m365agents.yml"
MAIN_BICEP = ROOT / "infra" / "azure.bicep"
BOT_BICEP = ROOT / "infra" / "botRegistration" / "azurebot.bicep"
PARAMETERS = ROOT / "infra" / "azure.parameters.json"
ENV_FILE = ROOT / "env" / ".env.dev"
README = ROOT / "README.md"
DOCKERFILE = ROOT / "Dockerfile"

# README configuration variables the Bicep does not set, each on purpose.
DELIBERATELY_DEFAULT = {
    # The image sets HOST=0.0.0.0 (Dockerfile ENV), what a server in a container must listen on.
    "HOST": "0.0.0.0 from the image",
    # UserAssignedMSI has no secret: start-up refuses a password with that type.
    "MicrosoftAppPassword": "no secret with UserAssignedMSI",
    # Bot Framework endpoint overrides, for another cloud or a test authority (all four or none); Azure's public
    # cloud needs none of them.
    "BOT_OPENID_METADATA_URL": "other clouds only",
    "BOT_TOKEN_ISSUER": "other clouds only",
    "BOT_LOGIN_URL": "other clouds only",
    "BOT_OAUTH_SCOPE": "other clouds only",
    # The deployed bot has its managed identity: local mode without authentication is never meant there.
    "BOT_ALLOW_ANONYMOUS": "never in Azure: the bot has its identity",
    # The image sets BOT_CACHE_DIR=/app/cache (Dockerfile ENV), where it stored the understander's training.
    "BOT_CACHE_DIR": "/app/cache from the image",
}
BUILTIN_ENV = {"TEAMSFX_ENV"}  # set by the toolkit itself
PLACEHOLDER = re.compile(r"\$\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
API_VERSION = re.compile(r"(\d{4})-(\d{2})-(\d{2})(-preview)?")
RESOURCE = re.compile(r"^resource\s+(\w+)\s+'([^'@]+)@([^']+)'(\s+existing)?\s*=\s*(if\s*\((.*)\)\s*)?\{", re.M)
SECRET_NAME = re.compile(r"password|secret|accesskey|connectionstring", re.I)
FAKE_CLIENT_ID = "3c9e2f1a-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
FAKE_TENANT_ID = "7d1e2c3b-4a5f-4b6e-8c7d-9e0f1a2b3c4d"


# -- Bicep, read the way the compiler would tokenize it (enough for these checks) -----------------------------------
def mask(text: str, strings: bool = True) -> str:
    """The text with comments blanked and (strings=True) string contents replaced by x, same length, newlines kept;
    the code of an interpolation ${...} stays, without its ${ and }. Raises ValueError on an unterminated string or
    comment."""
    out = list(text)
    frames: list[list] = [["code", 0]]  # code frames after the first are interpolations, with their brace depth
    i, n = 0, len(text)

    def blank(start: int, end: int, fill: str) -> None:
        out[start:end] = [ch if ch == "\n" else fill for ch in text[start:end]]

    while i < n:
        c = text[i]
        if frames[-1][0] == "code":
            if text.startswith("//", i):
                end = text.find("\n", i)
                end = n if end < 0 else end
                blank(i, end, " ")
                i = end
            elif text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end < 0:
                    raise ValueError(f"unterminated comment at line {text.count(chr(10), 0, i) + 1}")
                blank(i, end + 2, " ")
                i = end + 2
            elif text.startswith("'''", i):
                end = text.find("'''", i + 3)
                if end < 0:
                    raise ValueError(f"unterminated multi-line string at line {text.count(chr(10), 0, i) + 1}")
                if strings:
                    blank(i + 3, end, "x")
                i = end + 3
            elif c == "'":
                frames.append(["string", 0])
                i += 1
            else:
                if len(frames) > 1 and c == "{":
                    frames[-1][1] += 1
                elif len(frames) > 1 and c == "}":
                    if frames[-1][1] == 0:  # the end of the interpolation: back in the string
                        frames.pop()
                        if strings:
                            out[i] = "x"
                    else:
                        frames[-1][1] -= 1
                i += 1
        elif c == "\\":
            if strings:
                blank(i, min(i + 2, n), "x")
            i += 2
        elif text.startswith("${", i):
            if strings:
                out[i], out[i + 1] = "x", "x"
            frames.append(["code", 0])
            i += 2
        elif c == "'":
            frames.pop()
            i += 1
        elif c == "\n":
            raise ValueError(f"string not closed on line {text.count(chr(10), 0, i) + 1}")
        else:
            if strings:
                out[i] = "x"
            i += 1
    if len(frames) != 1:
        raise ValueError("the file ends inside a string or an interpolation")
    return "".join(out)


def bracket_errors(masked: str) -> list[str]:
    pairs, stack, errors = {")": "(", "]": "[", "}": "{"}, [], []
    for index, ch in enumerate(masked):
        if ch in "([{":
            stack.append((ch, index))
        elif ch in ")]}":
            if not stack or stack[-1][0] != pairs[ch]:
                errors.append(f"unmatched {ch!r} on line {masked.count(chr(10), 0, index) + 1}")
            else:
                stack.pop()
    errors += [f"unclosed {ch!r} from line {masked.count(chr(10), 0, index) + 1}" for ch, index in stack]
    return errors


def block_after(text: str, masked: str, start: int, brackets: str = "([{") -> str:
    """The bracketed block (of the original text) that opens at the first of `brackets` at or after `start`."""
    opening = min(i for i in (masked.find(b, start) for b in brackets) if i >= 0)
    depth = 0
    for index in range(opening, len(masked)):
        if masked[index] in "([{":
            depth += 1
        elif masked[index] in ")]}":
            depth -= 1
            if depth == 0:
                return text[opening:index + 1]
    raise AssertionError("unclosed block")


def lines(text: str) -> list[str]:
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def statements(text: str) -> list[str]:
    """Top-level statements (a decorator is a statement of its own), each as its text without comments."""
    masked, text = mask(text), mask(text, strings=False)
    found, depth, start = [], 0, None
    offset = 0
    for line, masked_line in zip(lines(text), lines(masked), strict=True):
        if depth == 0 and start is None and masked_line.strip():
            start = offset
        depth += sum(masked_line.count(b) for b in "([{") - sum(masked_line.count(b) for b in ")]}")
        offset += len(line)
        if depth == 0 and start is not None:
            found.append(text[start:offset])
            start = None
    return found


def parameters_of(path: Path) -> dict[str, dict]:
    """param name -> {type, default (text or None), decorators (texts)}."""
    params, decorators = {}, []
    for statement in statements(path.read_text(encoding="utf-8")):
        stripped = statement.strip()
        if stripped.startswith("@"):
            decorators.append(stripped)
            continue
        match = re.match(r"param\s+(\w+)\s+(\w+)\s*(?:=\s*(.+))?$", stripped, re.S)
        if match:
            params[match[1]] = {"type": match[2], "default": match[3], "decorators": decorators}
        decorators = []
    return params


def variables_of(path: Path) -> dict[str, str]:
    found = {}
    for statement in statements(path.read_text(encoding="utf-8")):
        match = re.match(r"var\s+(\w+)\s*=\s*(.+)$", statement.strip(), re.S)
        if match:
            found[match[1]] = match[2].strip()
    return found


def allowed_values(param: dict) -> list[str] | None:
    for decorator in param["decorators"]:
        if decorator.startswith("@allowed"):
            return re.findall(r"'([^']*)'", decorator)
    return None


def outputs_of(path: Path) -> set[str]:
    return set(re.findall(r"^output\s+(\w+)\s+\w+\s*=", path.read_text(encoding="utf-8"), re.M))


def app_settings() -> tuple[dict[str, str], set[str]]:
    """The web app's settings: name -> value expression, and the names set only when usePostgres is true."""
    text = MAIN_BICEP.read_text(encoding="utf-8")
    block = block_after(text, mask(text), text.index("appSettings:"))
    pairs = re.findall(r"name:\s*'([^']+)'\s*\n\s*value:\s*([^\n]+)", block)
    settings = {name: value.strip() for name, value in pairs}
    conditional = set(re.findall(r"name:\s*'([^']+)'", block[block.index("usePostgres ?"):]))
    return settings, conditional


def parameter_values() -> dict:
    return {name: entry["value"] for name, entry in json.loads(PARAMETERS.read_text(encoding="utf-8"))["parameters"].items()}


def evaluate(expression: str, params: dict[str, dict], variables: dict[str, str], given: dict) -> object:
    """A Bicep expression as the deployment would give it, for the few forms the app settings use; identity
    properties are stand-in GUIDs, ${{VAR}} in the parameters file a sample word. Anything else: its own text."""
    expression = expression.strip()

    def again(inner: str) -> object:
        return evaluate(inner, params, variables, given)

    if expression.startswith("'") and expression.endswith("'"):
        return re.sub(r"\$\{([^}]*)\}", lambda m: str(again(m[1])), expression[1:-1])
    if expression.isdigit():
        return int(expression)
    if expression in ("true", "false"):
        return expression == "true"
    stand_ins = {"identity.properties.clientId": FAKE_CLIENT_ID, "identity.properties.tenantId": FAKE_TENANT_ID}
    if expression in stand_ins:
        return stand_ins[expression]
    call = re.fullmatch(r"(string|toLower)\((\w+)\)", expression)
    if call:
        value = again(call[2])
        return str(value).lower() if call[1] == "toLower" or isinstance(value, bool) else str(value)
    if expression in variables:
        return again(variables[expression])
    if expression in given:
        value = given[expression]
        return PLACEHOLDER.sub("sample1", value) if isinstance(value, str) else value
    if expression in params and params[expression]["default"] is not None:
        return again(params[expression]["default"])
    return expression


def env_file() -> tuple[dict[str, str], set[str]]:
    """KEY=value lines of env/.env.dev, and the names only mentioned in comments (# KEY=)."""
    values, mentioned = {}, set()
    for line in ENV_FILE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match and match[1]:
            mentioned.add(match[2])
        elif match:
            values[match[2]] = match[3].strip()
    return values, mentioned


def readme_variables() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration (environment)", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]  # past the header and the rule
    names = [name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])]
    assert names, "no variables found in the README's configuration table"
    return names


# -- m365agents.yml ---------------------------------------------------------------------------------------------------
# The part of the Agents Toolkit's yaml schema (v1.11) this file uses: keys allowed and required per action.
ACTION_KEYS = {"name", "env", "uses", "with", "writeToEnvironmentFile"}
WITH_KEYS = {
    "arm/deploy": ({"subscriptionId", "resourceGroupName", "templates", "bicepCliVersion"},
                   {"subscriptionId", "resourceGroupName", "templates"}),
    "script": ({"run", "workingDirectory", "shell", "timeout", "redirectTo"}, {"run"}),
}
TEMPLATE_KEYS = ({"path", "parameters", "deploymentName"}, {"path", "deploymentName"})
TOP_KEYS = {"version", "projectId", "environmentFolderPath", "additionalMetadata", "provision", "deploy", "publish", "share"}


@pytest.fixture(scope="module")
def project() -> dict:
    return yaml.safe_load(AGENTS_YML.read_text(encoding="utf-8"))


def test_agents_yml_has_the_toolkit_shape(project):
    assert set(project) <= TOP_KEYS, set(project) - TOP_KEYS
    assert re.fullmatch(r"v1\.\d+", project["version"])
    assert (AGENTS_YML.parent / project["environmentFolderPath"]).is_dir()
    for stage in ("provision", "deploy"):
        assert project.get(stage), f"no {stage} stage"
        for action in project[stage]:
            assert set(action) <= ACTION_KEYS, (stage, set(action) - ACTION_KEYS)
            allowed, required = WITH_KEYS[action["uses"]]
            assert required <= set(action["with"]) <= allowed, (stage, action["uses"], sorted(action["with"]))
    arm = [a for a in project["provision"] if a["uses"] == "arm/deploy"]
    assert len(arm) == 1, "provision deploys the Bicep with arm/deploy"
    for template in arm[0]["with"]["templates"]:
        allowed, required = TEMPLATE_KEYS
        assert required <= set(template) <= allowed, sorted(template)


def test_agents_yml_paths_exist(project):
    templates = [t for a in project["provision"] if a["uses"] == "arm/deploy" for t in a["with"]["templates"]]
    assert [Path(t["path"]).name for t in templates] == ["azure.bicep"]
    for template in templates:
        for key in ("path", "parameters"):
            assert (AGENTS_YML.parent / template[key]).is_file(), template[key]


def test_agents_yml_against_the_published_schema(project):
    """The whole schema, where a copy is at hand: M365AGENTS_YAML_SCHEMA=<path to yaml.schema.json> (it ships in the
    npm package @microsoft/m365agentstoolkit-cli under resource/yaml-schema/<version>/)."""
    path = os.environ.get("M365AGENTS_YAML_SCHEMA")
    if not path:
        pytest.skip("M365AGENTS_YAML_SCHEMA is not set: the transcribed subset above was checked, not the whole schema")
    import jsonschema

    schema = json.loads(Path(path).read_text(encoding="utf-8"))
    errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(project)]
    assert not errors, errors


def test_every_placeholder_is_defined_in_the_env_file():
    values, mentioned = env_file()
    used_yml = set(PLACEHOLDER.findall(json.dumps(yaml.safe_load(AGENTS_YML.read_text(encoding="utf-8")))))  # not comments
    used_parameters = set(PLACEHOLDER.findall(PARAMETERS.read_text(encoding="utf-8")))
    for name in used_yml | used_parameters:
        if name.startswith("SECRET_"):  # from env/.env.<env>.user, never committed: named in a comment only
            assert name in mentioned, f"{name}: mention it (commented out) in {ENV_FILE.name}"
        else:
            assert name in values or name in BUILTIN_ENV, f"${{{{{name}}}}} is not defined in {ENV_FILE.name}"
    # The toolkit refuses an empty placeholder in the parameters file, and the outputs are empty before the first
    # provision: the parameters file must not depend on them.
    assert not used_parameters & outputs_of(MAIN_BICEP), used_parameters & outputs_of(MAIN_BICEP)
    # The outputs atk provision writes back are listed in the env file, so the file documents them.
    assert outputs_of(MAIN_BICEP) <= set(values), outputs_of(MAIN_BICEP) - set(values)


def test_env_file_holds_no_secret():
    values, _ = env_file()
    for name, value in values.items():
        if name.startswith("SECRET_") or SECRET_NAME.search(name):
            assert not value, f"{name} has a value in the committed {ENV_FILE.name}"


def test_deploy_runs_the_image_provision_runs(project):
    """`atk deploy` sets the same image (CONTAINER_IMAGE) in the same form as the Bicep's linuxFxVersion."""
    run = " ".join(a["with"]["run"] for a in project["deploy"] if a["uses"] == "script")
    assert '--linux-fx-version "DOCKER|${{CONTAINER_IMAGE}}"' in run
    assert "${{AZURE_WEB_APP_NAME}}" in run and "AZURE_WEB_APP_NAME" in outputs_of(MAIN_BICEP)
    assert parameter_values()["containerImage"] == "${{CONTAINER_IMAGE}}"
    assert "linuxFxVersion: 'DOCKER|${containerImage}'" in MAIN_BICEP.read_text(encoding="utf-8")


# -- azure.parameters.json ------------------------------------------------------------------------------------------
def test_parameters_file_matches_the_bicep():
    document = json.loads(PARAMETERS.read_text(encoding="utf-8"))
    assert "deploymentParameters.json" in document["$schema"]
    declared, given = parameters_of(MAIN_BICEP), parameter_values()
    assert set(given) <= set(declared), f"not declared in azure.bicep: {set(given) - set(declared)}"
    required = {name for name, p in declared.items() if p["default"] is None}
    assert required <= set(given), f"required and not set: {required - set(given)}"
    kinds = {"string": str, "int": int, "bool": bool, "object": dict, "array": list}
    for name, value in given.items():
        assert type(value) is kinds[declared[name]["type"]], (name, value)
        allowed = allowed_values(declared[name])
        if allowed is not None and not PLACEHOLDER.search(str(value)):
            assert value in allowed, (name, value, allowed)
        if SECRET_NAME.search(name):
            assert PLACEHOLDER.fullmatch(value) and value.startswith("${{SECRET_"), f"{name}: a literal secret"


# -- the Bicep files, structurally ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [MAIN_BICEP, BOT_BICEP], ids=lambda p: p.name)
def test_bicep_is_structurally_sound(path):
    text = path.read_text(encoding="utf-8")
    masked = mask(text)  # raises on an unterminated string or comment
    assert not bracket_errors(masked), bracket_errors(masked)
    for statement in statements(text):
        keyword = statement.strip().split(None, 1)[0]
        assert keyword.startswith("@") or keyword in {"param", "var", "resource", "module", "output", "targetScope"}, statement
    resources = RESOURCE.findall(text)
    assert resources, "no resource declarations"
    assert len(resources) == len(re.findall(r"^resource\s", text, re.M)), "a resource declaration this test cannot read"
    for name, kind, version, *_ in resources:
        assert re.fullmatch(r"Microsoft\.[A-Za-z]+/[A-Za-z]+(/[A-Za-z]+)*", kind), (name, kind)
        match = API_VERSION.fullmatch(version)
        assert match, f"{name}: API version {version!r} is not YYYY-MM-DD(-preview)"
        assert int(match[1]) >= 2015 and date(int(match[1]), int(match[2]), int(match[3])) <= date.today(), (name, version)
    for module in re.findall(r"^module\s+\w+\s+'([^']+)'", text, re.M):
        assert (path.parent / module).is_file(), f"module {module} does not exist"
    params = parameters_of(path)
    for name, param in params.items():
        if SECRET_NAME.search(name):
            assert "@secure()" in param["decorators"], f"param {name} needs @secure()"
            assert param["default"] in (None, "''"), f"param {name} has a default secret"
    literal_secret = re.compile(r"(?i)(password|secret|accessKey)\w*\s*:\s*'[^'$]+'")
    assert not literal_secret.search(text), literal_secret.search(text)


@pytest.mark.parametrize("path", [MAIN_BICEP, BOT_BICEP], ids=lambda p: p.name)
def test_bicep_parses_with_the_tree_sitter_grammar(path):
    """A real Bicep grammar (tree-sitter-bicep), where one is installed that needs no network: the 0.x releases of
    tree-sitter-language-pack bundle their grammars (`pip install 'tree-sitter-language-pack<1'`), the 1.x ones
    download them when first used, so they are not used here. Not the Bicep compiler: syntax only, no types."""
    pack = pytest.importorskip("tree_sitter_language_pack", reason="tree-sitter-language-pack<1 is not installed")
    from importlib.metadata import version

    if int(version("tree-sitter-language-pack").split(".")[0]) >= 1:
        pytest.skip("tree-sitter-language-pack 1.x fetches its grammars from the network; 0.x bundles them")
    tree = pack.get_parser("bicep").parse(path.read_bytes())
    broken = []

    def walk(node) -> None:
        if node.type == "ERROR" or node.is_missing:
            broken.append(f"{node.type} at line {node.start_point[0] + 1}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    assert not broken, broken


def test_module_parameters_are_declared_and_complete():
    text = MAIN_BICEP.read_text(encoding="utf-8")
    masked = mask(text)
    module = block_after(text, masked, text.index("module azureBotRegistration"))
    params_block = block_after(module, mask(module), module.index("params:"))
    given = set(re.findall(r"^\s*(\w+)\s*:", params_block[1:-1], re.M))
    declared = parameters_of(BOT_BICEP)
    assert given <= set(declared), given - set(declared)
    assert {n for n, p in declared.items() if p["default"] is None} <= given


# -- what the app gets ------------------------------------------------------------------------------------------------
def test_every_readme_variable_is_set_or_left_to_its_default_on_purpose():
    settings, _ = app_settings()
    readme = readme_variables()
    unaccounted = [name for name in readme if name not in settings and name not in DELIBERATELY_DEFAULT]
    assert not unaccounted, f"README variables neither set in azure.bicep nor in DELIBERATELY_DEFAULT: {unaccounted}"
    assert not set(DELIBERATELY_DEFAULT) & set(settings), "a variable is both set and said to be left default"
    assert set(DELIBERATELY_DEFAULT) <= set(readme), "DELIBERATELY_DEFAULT names a variable the README no longer has"
    assert "HOST=0.0.0.0" in DOCKERFILE.read_text(encoding="utf-8")  # the reason given for HOST


def test_the_app_settings_pass_the_bots_start_up_checks():
    """The settings, evaluated with the committed parameters and stand-ins for the identity's ids, are what
    Config.from_env accepts: UserAssignedMSI with its client id and tenant, no password, the port, the data dir."""
    settings, conditional = app_settings()
    params, variables, given = parameters_of(MAIN_BICEP), variables_of(MAIN_BICEP), parameter_values()
    assert given.get("usePostgres", False) is False and params["usePostgres"]["default"] == "false"
    env = {name: str(evaluate(value, params, variables, given))
           for name, value in settings.items() if name not in conditional}
    config = Config.from_env(env)
    assert config.app_type_name == "UserAssignedMSI" and config.auth_enabled
    assert config.app_id == FAKE_CLIENT_ID and config.app_tenant_id == FAKE_TENANT_ID and not config.app_password
    assert config.port == 8080 and str(config.data_dir) == "/data"
    assert re.fullmatch(r"https://kombitsample1-app\.azurewebsites\.net", config.public_url), config.public_url
    assert config.nudge_interval_minutes == given["nudgeIntervalMinutes"]
    assert conditional == {"BOT_DATABASE_URL"}, "only BOT_DATABASE_URL depends on usePostgres"


def test_port_is_the_dockerfiles():
    exposed = re.findall(r"^EXPOSE\s+(\d+)", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    settings, _ = app_settings()
    assert exposed and settings["PORT"] == settings["WEBSITES_PORT"] == f"'{exposed[0]}'", (exposed, settings["PORT"])


def test_the_site():
    text = MAIN_BICEP.read_text(encoding="utf-8")
    site = block_after(text, mask(text), text.index("resource webApp 'Microsoft.Web/sites@"), "{")
    for line in ("healthCheckPath: '/healthz'", "alwaysOn: true", "httpsOnly: true", "minTlsVersion: '1.2'",
                 "ftpsState: 'Disabled'", "acrUseManagedIdentityCreds: imageFromAcr", "type: 'UserAssigned'",
                 "acrUserManagedIdentityID: imageFromAcr ? identity.properties.clientId : ''"):
        assert line in site, line
    assert 'app.router.add_get("/healthz"' in (ROOT / "bot" / "app.py").read_text(encoding="utf-8")
    # The data dir is the mounted share, and one instance writes it.
    settings, _ = app_settings()
    variables = variables_of(MAIN_BICEP)
    assert settings["BOT_DATA_DIR"] == "dataMountPath" and variables["dataMountPath"] == "'/data'"
    assert "mountPath: dataMountPath" in site and "type: 'AzureFiles'" in site
    plan = block_after(text, mask(text), text.index("resource plan 'Microsoft.Web/serverfarms@"), "{")
    assert "capacity: 1" in plan and "reserved: true" in plan


def test_the_bot_is_user_assigned_msi_with_teams():
    text = BOT_BICEP.read_text(encoding="utf-8")
    bot = block_after(text, mask(text), text.index("resource botService 'Microsoft.BotService/botServices@"), "{")
    for line in ("kind: 'azurebot'", "location: 'global'", "msaAppType: 'UserAssignedMSI'", "msaAppId: identityClientId",
                 "msaAppTenantId: identityTenantId", "msaAppMSIResourceId: identityResourceId"):
        assert line in bot, line
    endpoint = re.search(r"endpoint:\s*'([^']+)'", bot)[1]
    assert endpoint.startswith("https://") and endpoint.endswith("/api/messages"), endpoint
    assert allowed_values(parameters_of(BOT_BICEP)["botServiceSku"]) == ["F0", "S1"]
    channel = block_after(text, mask(text), text.index("resource botServiceMsTeamsChannel"), "{")
    assert "parent: botService" in channel and "name: 'MsTeamsChannel'" in channel
    assert "channelName: 'MsTeamsChannel'" in channel
    assert "'Microsoft.BotService/botServices/channels@" in text
    # The main template hands the module the identity's CLIENT id (not its principal id) and the site's host name,
    # and gives the app the same client id as MicrosoftAppId.
    main = MAIN_BICEP.read_text(encoding="utf-8")
    for line in ("identityClientId: identity.properties.clientId", "identityResourceId: identity.id",
                 "identityTenantId: identity.properties.tenantId", "botAppDomain: webApp.properties.defaultHostName"):
        assert line in main, line
    settings, _ = app_settings()
    assert settings["MicrosoftAppId"] == "identity.properties.clientId"
    assert settings["MicrosoftAppTenantId"] == "identity.properties.tenantId"
    assert settings["MicrosoftAppType"] == "'UserAssignedMSI'"
    assert 'add_post("/api/messages"' in (ROOT / "bot" / "app.py").read_text(encoding="utf-8")


def test_postgres_is_optional_and_off():
    text = MAIN_BICEP.read_text(encoding="utf-8")
    postgres = [(name, kind, condition) for name, kind, _v, _e, _if, condition in RESOURCE.findall(text)
                if kind.startswith("Microsoft.DBforPostgreSQL/")]
    assert {kind for _, kind, _ in postgres} >= {"Microsoft.DBforPostgreSQL/flexibleServers"}
    assert all(condition.strip() == "usePostgres" for _, _, condition in postgres), postgres
    server = block_after(text, mask(text), text.index("resource postgres 'Microsoft.DBforPostgreSQL/flexibleServers@"), "{")
    for line in ("name: 'Standard_B1ms'", "tier: 'Burstable'", "version: '15'",
                 "administratorLoginPassword: postgresAdminPassword"):
        assert line in server, line
    # The URL the template builds is one the bot accepts as its store.
    assert re.search(r"name: 'BOT_DATABASE_URL'\s*value: 'postgresql://", text)
    assert Config.from_env({"BOT_DATABASE_URL": "postgresql://kombitadmin:pw@host.postgres.database.azure.com:5432/"
                            "bot?sslmode=require"}).database_url.startswith("postgresql://")
