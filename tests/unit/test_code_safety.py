"""No shipped module unpickles data, runs a model's remote code, evaluates a string or logs a secret.

The checker reads every Python file of the product (``service``, ``workers``, the client package, ``scripts`` and
``bench``) with :mod:`ast`, names resolved through each file's imports (``from pickle import loads as l``), and
reports a :class:`Finding` per offending call; its own self-test proves each rule on synthetic snippets, the
legitimate look-alikes included (``re.compile``, ``model.eval()``, ``n_tokens`` in a log line).

Rules:

- ``unpickle``: ``pickle``/``dill``/``cloudpickle``/``joblib``/``marshal``/``shelve`` loading, ``pandas.read_pickle``,
  ``yaml.load`` without a safe loader, ``torch.load`` without ``weights_only=True``, ``numpy.load`` with
  ``allow_pickle`` anything but ``False``; importing ``dill`` or ``cloudpickle`` at all.
- ``remote_code``: ``trust_remote_code`` given any value but the literal ``False`` (a keyword or a dict entry).
- ``eval``: the builtins ``eval``, ``exec`` and ``compile`` on anything but a string literal.
- ``secret_log``: a logging call (``log.info``, ``logger.warning``, ``logging.error``, …) whose arguments name a
  secret: a word such as ``secret``, ``password`` or ``pepper``; ``key`` alone or qualified as ``api_key``,
  ``admin_key``, …; ``access_token``, ``hf_token``, … (a plain ``token`` is a model's token here); a
  ``get_secret_value()`` call; an environment variable of such a name. It reads names, not data flow: a secret
  passed under an innocent name (``auth``) is not seen.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("service", "workers", "client/interp_client", "scripts", "bench")

_UNPICKLERS = {
    f"{module}.{name}"
    for module in ("pickle", "_pickle", "cPickle", "dill", "cloudpickle")
    for name in ("load", "loads", "Unpickler")
} | {"joblib.load", "marshal.load", "marshal.loads", "shelve.open", "pandas.read_pickle", "yaml.unsafe_load",
     "jsonpickle.decode"}
_PICKLING_MODULES = {"dill", "cloudpickle"}
_TORCH_LOADS = {"torch.load", "torch.serialization.load"}
_EVALUATORS = {f"{prefix}{name}" for prefix in ("", "builtins.") for name in ("eval", "exec", "compile")}
_LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"}
_LOGGER = re.compile(r"^_?(log|logger|logging|LOG|LOGGER)$|logger$", re.IGNORECASE)
_SECRET_WORDS = {"secret", "secrets", "password", "passwd", "passphrase", "pepper", "credential", "credentials",
                 "authorization", "cookie"}
_KEY_QUALIFIERS = {"api", "admin", "secret", "private", "signing", "access", "raw", "bearer", "auth", "hmac",
                   "webhook", "session", "master"}
_TOKEN_QUALIFIERS = {"access", "auth", "api", "bearer", "hf", "hub", "refresh", "session", "id", "csrf", "github"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.detail}"


def is_secret_name(name: str) -> bool:
    """``key_pepper``, ``webhookSecret``, ``api_key``, ``hf_token``: yes; ``key_id``, ``n_tokens``, ``cache_key``:
    no."""
    words = [w for w in re.split(r"[^a-z0-9]+", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()) if w]
    if not words:
        return False
    if _SECRET_WORDS.intersection(words):
        return True
    qualifier = words[-2] if len(words) > 1 else None
    if words[-1] == "key":
        return qualifier is None or qualifier in _KEY_QUALIFIERS
    return words[-1] == "token" and qualifier in _TOKEN_QUALIFIERS


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name → what it was imported as: ``np`` → ``numpy``, ``l`` → ``pickle.loads``."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                names[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _is_literal(node: ast.AST | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


class _Checker(ast.NodeVisitor):
    def __init__(self, path: str, aliases: dict[str, str]) -> None:
        self.path = path
        self.aliases = aliases
        self.found: list[Finding] = []

    def report(self, node: ast.AST, rule: str, detail: str) -> None:
        self.found.append(Finding(self.path, getattr(node, "lineno", 0), rule, detail))

    def resolve(self, node: ast.AST) -> str | None:
        dotted = _dotted(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        head = self.aliases.get(head, head)
        return f"{head}.{rest}" if rest else head

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] in _PICKLING_MODULES:
                self.report(node, "unpickle", f"imports {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.module.split(".")[0] in _PICKLING_MODULES:
            self.report(node, "unpickle", f"imports from {node.module}")

    def visit_Call(self, node: ast.Call) -> None:
        name = self.resolve(node.func)
        if name is not None:
            self.check_call(node, name)
        if isinstance(node.func, ast.Attribute) and node.func.attr in _LOG_METHODS:
            receiver = node.func.value
            if (isinstance(receiver, ast.Call) and (self.resolve(receiver.func) or "").endswith("getLogger")) or (
                (dotted := _dotted(receiver)) is not None and _LOGGER.search(dotted.rsplit(".", 1)[-1])
            ):
                self.check_log(node)
        for keyword in node.keywords:
            if keyword.arg == "trust_remote_code" and not _is_literal(keyword.value, False):
                self.report(node, "remote_code", f"trust_remote_code={ast.unparse(keyword.value)}")
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if key is not None and _is_literal_str(key, "trust_remote_code") and not _is_literal(value, False):
                self.report(node, "remote_code", f'"trust_remote_code": {ast.unparse(value)}')
        self.generic_visit(node)

    def check_call(self, node: ast.Call, name: str) -> None:
        if name in _UNPICKLERS:
            self.report(node, "unpickle", f"{name}()")
        elif name in _TORCH_LOADS and not _is_literal(_keyword(node, "weights_only"), True):
            self.report(node, "unpickle", f"{name}() without weights_only=True")
        elif name == "numpy.load" and (allow := _keyword(node, "allow_pickle")) is not None \
                and not _is_literal(allow, False):
            self.report(node, "unpickle", f"numpy.load(allow_pickle={ast.unparse(allow)})")
        elif name == "yaml.load":
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or not (self.resolve(loader) or "").endswith("SafeLoader"):
                self.report(node, "unpickle", "yaml.load() without a SafeLoader")
        elif name in _EVALUATORS:
            source = node.args[0] if node.args else None
            if not (isinstance(source, ast.Constant) and isinstance(source.value, str | bytes)):
                self.report(node, "eval", f"{name}() of a non-literal")

    def check_log(self, node: ast.Call) -> None:
        for part in [*node.args, *(k.value for k in node.keywords)]:
            for named in _names_in(part):
                if is_secret_name(named):
                    self.report(node, "secret_log", f"logs {named!r}")
            if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                   and n.func.attr == "get_secret_value" for n in ast.walk(part)):
                self.report(node, "secret_log", "logs get_secret_value()")


def _is_literal_str(node: ast.AST, text: str) -> bool:
    return _text(node) == text


def _text(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _names_in(node: ast.AST) -> list[str]:
    """Identifiers an expression reads (``made.key`` → ``made``, ``key``), dict keys and environment variable names
    (``os.environ["HF_TOKEN"]``, ``os.getenv("HF_TOKEN")``); not the text of a message."""
    names: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.append(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.append(sub.attr)
        elif isinstance(sub, ast.Subscript) and (text := _text(sub.slice)) is not None:
            names.append(text)
        elif isinstance(sub, ast.Dict):
            names.extend(text for key in sub.keys if (text := _text(key)) is not None)
        elif (isinstance(sub, ast.Call) and sub.args and (text := _text(sub.args[0])) is not None
              and (_dotted(sub.func) or "").rsplit(".", 1)[-1] in ("get", "getenv")):
            names.append(text)
    return names


def findings(source: str, path: str = "<snippet>") -> list[Finding]:
    tree = ast.parse(source, filename=path)
    checker = _Checker(path, _aliases(tree))
    checker.visit(tree)
    return checker.found


def shipped_files() -> list[Path]:
    return sorted(p for top in SHIPPED for p in (REPO_ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)


def test_shipped_code_is_safe() -> None:
    files = shipped_files()
    assert len(files) > 100 and REPO_ROOT / "service" / "app.py" in files  # the walk did find the product
    found = [f for path in files for f in findings(path.read_text(encoding="utf-8"), str(path.relative_to(REPO_ROOT)))]
    assert not found, "unsafe code:\n" + "\n".join(map(str, found))


CAUGHT: list[tuple[str, str]] = [
    ("import pickle\npickle.loads(blob)", "unpickle"),
    ("import pickle as p\np.load(open(path, 'rb'))", "unpickle"),
    ("from pickle import loads as thaw\nthaw(blob)", "unpickle"),
    ("import pickle\npickle.Unpickler(stream).load()", "unpickle"),
    ("import torch\ntorch.load(path)", "unpickle"),
    ("import torch\ntorch.load(path, weights_only=False)", "unpickle"),
    ("import torch\ntorch.load(path, weights_only=flag)", "unpickle"),
    ("from torch import load\nload(path, map_location='cpu')", "unpickle"),
    ("import joblib\njoblib.load(path)", "unpickle"),
    ("import dill", "unpickle"),
    ("from dill import loads", "unpickle"),
    ("import marshal\nmarshal.loads(code)", "unpickle"),
    ("import numpy as np\nnp.load(path, allow_pickle=True)", "unpickle"),
    ("import pandas as pd\npd.read_pickle(path)", "unpickle"),
    ("import yaml\nyaml.load(text)", "unpickle"),
    ("import yaml\nyaml.load(text, Loader=yaml.Loader)", "unpickle"),
    ("AutoModel.from_pretrained(path, trust_remote_code=True)", "remote_code"),
    ("AutoModel.from_pretrained(path, trust_remote_code=settings.trust)", "remote_code"),
    ("kwargs = {'trust_remote_code': True}", "remote_code"),
    ("eval(expression)", "eval"),
    ("exec(request.code)", "eval"),
    ("compile(source, '<x>', 'exec')", "eval"),
    ("import builtins\nbuiltins.eval(text)", "eval"),
    ("log.info('key %s', made.key)", "secret_log"),
    ("logger.warning('pepper=%s', settings.key_pepper)", "secret_log"),
    ("logging.error('secret: %s', webhook_secret)", "secret_log"),
    ("log.debug(f'using {api_key}')", "secret_log"),
    ("self.log.info('%s', password)", "secret_log"),
    ("logging.getLogger(__name__).info('%s', hf_token)", "secret_log"),
    ("log.info('%s', settings.key_pepper.get_secret_value())", "secret_log"),
    ("log.info('%s', os.environ['HF_TOKEN'])", "secret_log"),
    ("log.info('%s', os.getenv('INTERP_WEBHOOK_SECRET'))", "secret_log"),
    ("log.info('%s', extra={'apiKey': value})", "secret_log"),
]

ALLOWED = [
    "import torch\ntorch.load(path, weights_only=True, map_location='cpu')",
    "import numpy as np\nnp.load(path)\nnp.load(path, allow_pickle=False)",
    "import re\nre.compile(pattern)",
    "from re import compile\ncompile(pattern)",
    "model.eval()",
    "eval('1 + 1')",
    "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)\nyaml.safe_load(text)",
    "import json\njson.loads(text)",
    "AutoModel.from_pretrained(path, trust_remote_code=False)",
    "kwargs = {'trust_remote_code': False, 'local_files_only': True}",
    "log.info('%d tokens, key %s, cache key %s', n_tokens, key_id, cache_key)",
    "log.info('the key pepper is not set; see INTERP_KEY_PEPPER')",
    "log.warning('%s: %s', error.code, error.message)",
    "print(made.key)",
    "tokens.info(secret)",
]


@pytest.mark.parametrize(("source", "rule"), CAUGHT, ids=[source for source, _ in CAUGHT])
def test_the_checker_catches(source: str, rule: str) -> None:
    found = findings(source)
    assert found and {f.rule for f in found} == {rule}, found


@pytest.mark.parametrize("source", ALLOWED)
def test_the_checker_lets_legitimate_code_pass(source: str) -> None:
    assert findings(source) == []
