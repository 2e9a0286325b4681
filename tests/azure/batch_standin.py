"""A stand-in for the Azure Batch service, for tests only: a small aiohttp server on 127.0.0.1.

It checks what a client sends (method, path, ``api-version``, the SharedKey signature, the body's
required properties), keeps the state of pools, nodes, jobs and tasks, and answers with the shapes
of the official REST examples (api-version 2025-06-01) and the exact success statuses.

Time is simulated: every read of a pool, job, node list or task list advances the world by one
step. Nodes go creating -> starting -> idle; a task goes active -> running -> completed over two
steps; terminating a job runs the release task on every node that ran its preparation, over two
steps, then completes the job. Command lines are not run; the three shapes the sample uses on
Linux (``echo ... > file``, ``echo ... >> file``, ``rm file`` in the node's shared directory) are
applied to an in-memory shared directory per node, so node files hold what the sample would write.
Other command lines succeed and have no effect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

from aiohttp import web

API_VERSION = "2025-06-01"
SIGNED_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)
RELEASE_MAX_WALL_CLOCK = timedelta(minutes=15)
STEPS_TO_IDLE = 2

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Json = dict[str, Any]
BODY = web.RequestKey("body", dict[str, Any])


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ServiceFailure(Exception):
    """An error answer: status, Batch error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str, **headers: str) -> web.Response:
    body = {
        "odata.metadata": "https://account.region.batch.azure.com/$metadata"
        "#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element",
        "code": code,
        "message": {"lang": "en-US", "value": f"{message}\nRequestId:standin\nTime:{now()}"},
    }
    return web.json_response(body, status=status, headers=headers)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration as the SDK writes them (``PT15M``, ``P1DT2H``)."""
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", text)
    if not match or text in ("P", "PT"):
        raise ServiceFailure(400, "InvalidPropertyValue", f"invalid duration {text!r}")
    days, hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def require(body: Json, *names: str) -> None:
    for name in names:
        if body.get(name) in (None, ""):
            raise ServiceFailure(
                400, "MissingRequiredProperty", f"A required property was not specified: {name}"
            )


# --- the effects of the sample's command lines ------------------------------------------------

_SCRIPT = re.compile(r"""/bin/(?:ba)?sh -c (['"])(?P<script>.*)\1""", re.S)
_SHARED = r'"?\$\{?AZ_BATCH_NODE_SHARED_DIR\}?/(?P<name>[^"\s]+)"?'
_ECHO = re.compile(rf'echo "(?P<text>[^"]*)" (?P<op>>>?) ?{_SHARED}')
_RM = re.compile(rf"rm (?:-f )?{_SHARED}")


def apply_command(command_line: str, shared: dict[str, str], variables: dict[str, str]) -> int:
    """Apply a sample command line to a node's shared directory; return its exit code."""
    match = _SCRIPT.fullmatch(command_line.strip())
    if not match:
        return 0
    script = match["script"].strip()
    if echo := _ECHO.fullmatch(script):
        text = re.sub(
            r"\$\{?(AZ_BATCH_\w+?)\}?(?=\W|$)",
            lambda var: variables.get(var[1], ""),
            echo["text"],
        )
        name = echo["name"]
        previous = shared.get(name, "") if echo["op"] == ">>" else ""
        shared[name] = previous + text + "\n"
        return 0
    if rm := _RM.fullmatch(script):
        if rm["name"] not in shared:
            return 0 if "-f" in script else 1
        del shared[rm["name"]]
    return 0


# --- state ----------------------------------------------------------------------------------


@dataclass
class Node:
    id: str
    pool_id: str
    steps_alive: int = 0
    running: list[str] = field(default_factory=list)
    shared: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> str:
        if self.steps_alive == 0:
            return "creating"
        if self.steps_alive < STEPS_TO_IDLE:
            return "starting"
        return "running" if self.running else "idle"

    def as_json(self, base: str) -> Json:
        return {
            "id": self.id,
            "url": f"{base}/pools/{self.pool_id}/nodes/{self.id}",
            "state": self.state,
            "schedulingState": "enabled",
            "stateTransitionTime": now(),
            "vmSize": "standard_d1_v2",
            "totalTasksRun": 0,
            "runningTasksCount": len(self.running),
            "runningTaskSlotsCount": len(self.running),
            "isDedicated": True,
        }


@dataclass
class Pool:
    body: Json
    state: str = "active"
    allocation_state: str = "resizing"
    nodes: list[Node] = field(default_factory=list)
    created_nodes: int = 0

    @property
    def id(self) -> str:
        return str(self.body["id"])

    @property
    def slots(self) -> int:
        return int(self.body.get("taskSlotsPerNode") or 1)

    @property
    def fill_type(self) -> str:
        return str((self.body.get("taskSchedulingPolicy") or {}).get("nodeFillType") or "spread")

    def add_node(self) -> None:
        self.created_nodes += 1
        digest = hashlib.sha256(f"{self.id}/{self.created_nodes}".encode()).hexdigest()
        self.nodes.append(Node(id=f"tvmps_{digest}_d", pool_id=self.id))

    def as_json(self, base: str) -> Json:
        return {
            **self.body,
            "url": f"{base}/pools/{self.id}",
            "eTag": "0x8DBA3B4E91CD7B7",
            "state": self.state,
            "allocationState": self.allocation_state,
            "currentDedicatedNodes": len(self.nodes),
            "currentLowPriorityNodes": 0,
            "targetDedicatedNodes": int(self.body.get("targetDedicatedNodes") or 0),
            "targetLowPriorityNodes": int(self.body.get("targetLowPriorityNodes") or 0),
            "taskSlotsPerNode": self.slots,
            "taskSchedulingPolicy": {"nodeFillType": self.fill_type},
        }


@dataclass
class Task:
    body: Json
    state: str = "active"
    node_id: str | None = None
    execution: Json = field(default_factory=lambda: {"retryCount": 0, "requeueCount": 0})

    @property
    def id(self) -> str:
        return str(self.body["id"])

    def as_json(self, base: str, job_id: str) -> Json:
        document: Json = {
            **self.body,
            "url": f"{base}/jobs/{job_id}/tasks/{self.id}",
            "state": self.state,
            "executionInfo": self.execution,
        }
        if self.node_id:
            document["nodeInfo"] = {"nodeId": self.node_id, "poolId": "", "affinityId": ""}
        return document


@dataclass
class Job:
    body: Json
    state: str = "active"
    tasks: dict[str, Task] = field(default_factory=dict)
    prep: dict[str, Json] = field(default_factory=dict)
    release: dict[str, Json] = field(default_factory=dict)
    terminate_reason: str | None = None
    end_time: str | None = None

    @property
    def id(self) -> str:
        return str(self.body["id"])

    @property
    def pool_id(self) -> str:
        return str(self.body["poolInfo"]["poolId"])

    def as_json(self, base: str) -> Json:
        execution: Json = {"startTime": "2025-11-22T19:32:02.8155319Z", "poolId": self.pool_id}
        if self.end_time:
            execution["endTime"] = self.end_time
        if self.terminate_reason:
            execution["terminateReason"] = self.terminate_reason
        return {
            **self.body,
            "url": f"{base}/jobs/{self.id}",
            "eTag": "0x8D4100FC46D5BF4",
            "state": self.state,
            "onAllTasksComplete": self.body.get("onAllTasksComplete", "noaction"),
            "executionInfo": execution,
        }


@dataclass
class Fault:
    """An injected answer for requests matching `method` and the `path` regex."""

    method: str
    path: re.Pattern[str]
    status: int
    code: str
    times: int | None
    headers: dict[str, str]


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any


# --- the service ----------------------------------------------------------------------------


class BatchStandIn:
    """A Batch account at ``http://127.0.0.1:<port>``: start with `start`, stop with `close`."""

    def __init__(
        self, account: str, key: str, *, page_size: int = 1000, steps_per_read: int = 1
    ) -> None:
        self.account = account
        self._key = base64.b64decode(key)
        self.page_size = page_size
        self.steps_per_read = steps_per_read
        self.node_ids: list[str] = []
        """Every node ever allocated, in order."""
        self.task_log: list[tuple[str, str, str]] = []
        """(job id, node id, task id) of every task that completed, in order."""
        self.pools: dict[str, Pool] = {}
        self.jobs: dict[str, Job] = {}
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.flaky_tasks: dict[str, int] = {}
        """Task id -> how many more adds of it answer a per-task ``servererror``."""
        self.endpoint = ""
        self._runner: web.AppRunner | None = None

    # lifecycle

    async def start(self) -> str:
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(
            [
                web.post("/pools", self.create_pool),
                web.get("/pools/{pool}", self.get_pool),
                web.delete("/pools/{pool}", self.delete_pool),
                web.post("/pools/{pool}/resize", self.resize_pool),
                web.get("/pools/{pool}/nodes", self.list_nodes),
                web.get("/pools/{pool}/nodes/{node}/files/{path:.+}", self.get_node_file),
                web.get("/jobs", self.list_jobs),
                web.post("/jobs", self.create_job),
                web.get("/jobs/{job}", self.get_job),
                web.delete("/jobs/{job}", self.delete_job),
                web.post("/jobs/{job}/terminate", self.terminate_job),
                web.post("/jobs/{job}/addtaskcollection", self.add_tasks),
                web.get("/jobs/{job}/tasks", self.list_tasks),
                web.get("/jobs/{job}/taskcounts", self.task_counts),
                web.get("/jobs/{job}/jobpreparationandreleasetaskstatus", self.prep_release_status),
            ]
        )
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.endpoint = f"http://127.0.0.1:{port}"
        return self.endpoint

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def inject(
        self,
        method: str,
        path: str,
        status: int,
        *,
        code: str = "ServerBusy",
        times: int | None = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` matching requests (None: all of them) with an error."""
        self.faults.append(
            Fault(method, re.compile(path), status, code, times, dict(headers or {}))
        )

    def calls(self, method: str, path: str) -> list[Recorded]:
        pattern = re.compile(path)
        return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    # checks applied to every request

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw_body = await request.read()
        body: Any = None
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                return error_response(400, "InvalidRequestBody", "The request body is not JSON")
        query = {name: values[0] for name, values in parse_qs(request.query_string).items()}
        self.requests.append(Recorded(request.method, unquote(request.path), query, body))

        if query.get("api-version") != API_VERSION:
            return error_response(
                400, "InvalidQueryParameterValue", "The api-version is missing or not supported"
            )
        if problem := self._authentication_problem(request):
            return problem
        if request.method == "POST" and not request.headers.get("Content-Type", "").startswith(
            "application/json"
        ):
            return error_response(400, "InvalidHeaderValue", "Content-Type must be JSON")
        if fault := self._take_fault(request.method, unquote(request.path)):
            return error_response(fault.status, fault.code, "Injected failure", **fault.headers)
        request[BODY] = body if isinstance(body, dict) else {}
        try:
            return await handler(request)
        except ServiceFailure as failure:
            return error_response(failure.status, failure.code, failure.message)

    def _authentication_problem(self, request: web.Request) -> web.Response | None:
        authorization = request.headers.get("Authorization", "")
        prefix = f"SharedKey {self.account}:"
        if not authorization.startswith(prefix):
            return error_response(
                401, "AuthenticationFailed", "The Authorization header is missing or malformed"
            )
        if not request.headers.get("ocp-date"):
            return error_response(400, "MissingRequiredHeader", "ocp-date is required")
        expected = self.signature(request)
        if not hmac.compare_digest(authorization[len(prefix) :], expected):
            return error_response(
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of "
                "Authorization header is formed correctly including the signature.",
            )
        return None

    def signature(self, request: web.Request) -> str:
        """The SharedKey signature of a request, computed over what arrived on the wire."""
        headers = {name.lower(): value for name, value in request.headers.items() if value}
        if request.method not in ("GET", "HEAD"):
            headers.setdefault("content-length", "0")
        lines = [request.method, *(headers.get(name, "") for name in SIGNED_HEADERS)]
        text = "\n".join(lines) + "\n"
        ocp = sorted((name, value) for name, value in headers.items() if "ocp-" in name)
        text += "".join(f"{name}:{value}\n" for name, value in ocp)
        raw_path, _, raw_query = request.raw_path.partition("?")
        text += f"/{self.account}{raw_path}"
        for name, values in sorted(parse_qs(raw_query).items()):
            if values[0]:
                text += f"\n{name}:{values[0]}"
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.path.fullmatch(path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                return fault
        return None

    # simulated time

    def step(self) -> None:
        for _ in range(self.steps_per_read):
            for pool in list(self.pools.values()):
                self._step_pool(pool)
            for job in list(self.jobs.values()):
                self._step_job(job)

    def _step_pool(self, pool: Pool) -> None:
        if pool.state == "deleting":
            del self.pools[pool.id.lower()]
            return
        target = int(pool.body.get("targetDedicatedNodes") or 0)
        while len(pool.nodes) < target:
            pool.add_node()
            self.node_ids.append(pool.nodes[-1].id)
        while len(pool.nodes) > target:
            pool.nodes.pop()
        pool.allocation_state = "steady"
        for node in pool.nodes:
            node.steps_alive += 1

    def _step_job(self, job: Job) -> None:
        if job.state == "deleting":
            del self.jobs[job.id.lower()]
            return
        pool = self.pools.get(job.pool_id.lower())
        nodes = {node.id: node for node in pool.nodes} if pool else {}
        if job.state == "terminating":
            self._step_release(job, nodes)
            return
        if job.state != "active":
            return
        for task in job.tasks.values():
            if task.state == "running" and task.node_id in nodes:
                self._finish_task(job, task, nodes[task.node_id])
        if pool is not None:
            for task in job.tasks.values():
                if task.state == "active" and (node := self._free_node(pool)):
                    self._start_task(job, task, node)

    def _free_node(self, pool: Pool) -> Node | None:
        ready = [n for n in pool.nodes if n.state in ("idle", "running")]
        free = [n for n in ready if len(n.running) < pool.slots]
        if not free:
            return None
        if pool.fill_type == "pack":
            return free[0]
        return min(free, key=lambda n: len(n.running))

    def _variables(self, job: Job, node: Node, task_id: str) -> dict[str, str]:
        return {
            "AZ_BATCH_NODE_ID": node.id,
            "AZ_BATCH_POOL_ID": node.pool_id,
            "AZ_BATCH_JOB_ID": job.id,
            "AZ_BATCH_TASK_ID": task_id,
            "AZ_BATCH_NODE_SHARED_DIR": "/mnt/batch/tasks/shared",
        }

    def _run_special(self, job: Job, key: str, node: Node) -> Json:
        spec = job.body[key]
        default_id = "jobpreparation" if key == "jobPreparationTask" else "jobrelease"
        task_id = str(spec.get("id") or default_id)
        exit_code = apply_command(
            spec["commandLine"], node.shared, self._variables(job, node, task_id)
        )
        info: Json = {
            "state": "completed",
            "startTime": now(),
            "endTime": now(),
            "taskRootDirectory": f"workitems/{job.id}/job-1/{task_id}",
            "exitCode": exit_code,
            "result": "success" if exit_code == 0 else "failure",
        }
        if key == "jobPreparationTask":
            info["retryCount"] = 0
        return info

    def _start_task(self, job: Job, task: Task, node: Node) -> None:
        if "jobPreparationTask" in job.body and node.id not in job.prep:
            job.prep[node.id] = self._run_special(job, "jobPreparationTask", node)
        task.state = "running"
        task.node_id = node.id
        task.execution.update(startTime=now())
        node.running.append(task.id)

    def _finish_task(self, job: Job, task: Task, node: Node) -> None:
        exit_code = apply_command(
            task.body["commandLine"], node.shared, self._variables(job, node, task.id)
        )
        task.state = "completed"
        task.execution.update(
            endTime=now(), exitCode=exit_code, result="success" if exit_code == 0 else "failure"
        )
        if exit_code:
            task.execution["failureInfo"] = {
                "category": "usererror",
                "code": "FailureExitCode",
                "message": "The task exited with an exit code representing a failure",
            }
        node.running.remove(task.id)
        self.task_log.append((job.id, node.id, task.id))

    def _step_release(self, job: Job, nodes: dict[str, Node]) -> None:
        pending = [node_id for node_id in job.prep if node_id not in job.release]
        if "jobReleaseTask" in job.body and pending:
            for node_id in pending:
                if node_id in nodes:
                    job.release[node_id] = self._run_special(job, "jobReleaseTask", nodes[node_id])
            return
        job.state = "completed"
        job.end_time = now()

    def _end_running_tasks(self, job: Job) -> None:
        for task in job.tasks.values():
            if task.state != "running":
                continue
            task.state = "completed"
            task.execution.update(
                endTime=now(),
                exitCode=-1,
                result="failure",
                failureInfo={
                    "category": "usererror",
                    "code": "TaskEnded",
                    "message": "The task was ended because its job was terminated",
                },
            )
            for pool in self.pools.values():
                for node in pool.nodes:
                    if task.id in node.running:
                        node.running.remove(task.id)

    # lookups

    def _pool(self, request: web.Request) -> Pool:
        pool = self.pools.get(request.match_info["pool"].lower())
        if pool is None:
            raise ServiceFailure(404, "PoolNotFound", "The specified pool does not exist.")
        return pool

    def _job(self, request: web.Request) -> Job:
        job = self.jobs.get(request.match_info["job"].lower())
        if job is None:
            raise ServiceFailure(404, "JobNotFound", "The specified job does not exist.")
        return job

    def _page(self, request: web.Request, items: list[Json]) -> web.Response:
        start = int(request.query.get("$skiptoken", "0"))
        page = items[start : start + self.page_size]
        select = request.query.get("$select")
        if select:
            names = set(select.split(","))
            page = [{k: v for k, v in item.items() if k in names} for item in page]
        document: Json = {"value": page}
        if start + self.page_size < len(items):
            keep = f"&$select={select}" if select else ""
            document["odata.nextLink"] = (
                f"{self.endpoint}{request.path}?api-version={API_VERSION}"
                f"&$skiptoken={start + self.page_size}{keep}"
            )
        return web.json_response(document)

    # pools

    async def create_pool(self, request: web.Request) -> web.Response:
        body: Json = request[BODY]
        require(body, "id", "vmSize", "virtualMachineConfiguration")
        configuration = body["virtualMachineConfiguration"]
        require(configuration, "imageReference", "nodeAgentSKUId")
        require(configuration["imageReference"], "publisher", "offer", "sku")
        if body["id"].lower() in self.pools:
            raise ServiceFailure(409, "PoolExists", "The specified pool already exists.")
        self.pools[body["id"].lower()] = Pool(body=body)
        return web.Response(status=201, headers={"ETag": "0x8D45765A6A2DC04"})

    async def get_pool(self, request: web.Request) -> web.Response:
        self.step()
        return web.json_response(self._pool(request).as_json(self.endpoint))

    async def delete_pool(self, request: web.Request) -> web.Response:
        pool = self._pool(request)
        if pool.state == "deleting":
            raise ServiceFailure(409, "PoolBeingDeleted", "The specified pool is being deleted.")
        pool.state = "deleting"
        return web.Response(status=202)

    async def resize_pool(self, request: web.Request) -> web.Response:
        pool = self._pool(request)
        if pool.allocation_state != "steady":
            raise ServiceFailure(409, "PoolNotSteady", "The specified pool is not steady.")
        body: Json = request[BODY]
        pool.body["targetDedicatedNodes"] = int(body.get("targetDedicatedNodes") or 0)
        pool.allocation_state = "resizing"
        return web.Response(status=202)

    async def list_nodes(self, request: web.Request) -> web.Response:
        self.step()
        pool = self._pool(request)
        return self._page(request, [node.as_json(self.endpoint) for node in pool.nodes])

    async def get_node_file(self, request: web.Request) -> web.Response:
        pool = self._pool(request)
        node = next((n for n in pool.nodes if n.id == request.match_info["node"]), None)
        if node is None:
            raise ServiceFailure(404, "NodeNotFound", "The specified node does not exist.")
        path = unquote(request.match_info["path"]).replace("\\", "/")
        directory, _, name = path.partition("/")
        if directory != "shared" or name not in node.shared:
            raise ServiceFailure(404, "FileNotFound", "The specified file does not exist.")
        return web.Response(
            body=node.shared[name].encode(),
            content_type="application/octet-stream",
            headers={
                "ocp-creation-time": "Fri, 17 Feb 2025 00:00:00 GMT",
                "ocp-batch-file-isdirectory": "false",
            },
        )

    # jobs

    async def list_jobs(self, request: web.Request) -> web.Response:
        jobs = list(self.jobs.values())
        if wanted := request.query.get("$filter"):
            match = re.fullmatch(r"id eq '([^']*)'", wanted)
            if not match:
                raise ServiceFailure(400, "InvalidQueryParameterValue", "unsupported $filter")
            jobs = [job for job in jobs if job.id.lower() == match[1].lower()]
        return self._page(request, [job.as_json(self.endpoint) for job in jobs])

    async def create_job(self, request: web.Request) -> web.Response:
        body: Json = request[BODY]
        require(body, "id", "poolInfo")
        require(body["poolInfo"], "poolId")
        if "jobReleaseTask" in body:
            if "jobPreparationTask" not in body:
                raise ServiceFailure(
                    400, "InvalidPropertyValue", "A job release task needs a job preparation task"
                )
            require(body["jobReleaseTask"], "commandLine")
            limit = body["jobReleaseTask"].get("maxWallClockTime")
            if limit and parse_duration(limit) > RELEASE_MAX_WALL_CLOCK:
                raise ServiceFailure(
                    400, "InvalidPropertyValue", "maxWallClockTime of a release task is 15 min"
                )
        if "jobPreparationTask" in body:
            require(body["jobPreparationTask"], "commandLine")
        if body["id"].lower() in self.jobs:
            raise ServiceFailure(409, "JobExists", "The specified job already exists.")
        self.jobs[body["id"].lower()] = Job(body=body)
        return web.Response(status=201)

    async def get_job(self, request: web.Request) -> web.Response:
        self.step()
        document = self._job(request).as_json(self.endpoint)
        if select := request.query.get("$select"):
            document = {k: v for k, v in document.items() if k in select.split(",")}
        return web.json_response(document)

    async def delete_job(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job.state == "active":
            self._end_running_tasks(job)
            pool = self.pools.get(job.pool_id.lower())
            nodes = {node.id: node for node in pool.nodes} if pool else {}
            for node_id in job.prep:
                if "jobReleaseTask" in job.body and node_id in nodes:
                    job.release[node_id] = self._run_special(job, "jobReleaseTask", nodes[node_id])
        job.state = "deleting"
        return web.Response(status=202)

    async def terminate_job(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job.state in ("terminating", "completed", "deleting"):
            raise ServiceFailure(409, "JobCompleted", "The specified job is already completed.")
        body: Json = request[BODY]
        job.state = "terminating"
        job.terminate_reason = body.get("terminateReason") or "UserTerminate"
        self._end_running_tasks(job)
        return web.Response(status=202)

    async def prep_release_status(self, request: web.Request) -> web.Response:
        self.step()
        job = self._job(request)
        if "jobPreparationTask" not in job.body:
            raise ServiceFailure(
                409,
                "JobPreparationTaskNotSpecified",
                "The specified job does not have a job preparation task.",
            )
        entries = []
        for node_id, prep in job.prep.items():
            entry: Json = {
                "poolId": job.pool_id,
                "nodeId": node_id,
                "nodeUrl": f"{self.endpoint}/pools/{job.pool_id}/nodes/{node_id}",
                "jobPreparationTaskExecutionInfo": prep,
            }
            if node_id in job.release:
                entry["jobReleaseTaskExecutionInfo"] = job.release[node_id]
            entries.append(entry)
        return self._page(request, entries)

    # tasks

    async def add_tasks(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job.state != "active":
            raise ServiceFailure(409, "JobNotActive", "The specified job is not active.")
        body: Json = request[BODY]
        require(body, "value")
        if len(body["value"]) > 100:
            raise ServiceFailure(400, "TooManyTasks", "At most 100 tasks can be added at once")
        reserved = {
            str(job.body.get(key, {}).get("id") or default).lower(): code
            for key, default, code in (
                ("jobPreparationTask", "jobpreparation", "TaskIdSameAsJobPreparationTask"),
                ("jobReleaseTask", "jobrelease", "TaskIdSameAsJobReleaseTask"),
            )
            if key in job.body
        }
        results = []
        for task_body in body["value"]:
            require(task_body, "id", "commandLine")
            folded = task_body["id"].lower()
            result: Json = {"taskId": task_body["id"]}
            if self.flaky_tasks.get(task_body["id"], 0) > 0:
                self.flaky_tasks[task_body["id"]] -= 1
                result.update(status="servererror", error=self._task_error("ServerBusy"))
            elif folded in reserved:
                result.update(status="clienterror", error=self._task_error(reserved[folded]))
            elif folded in job.tasks:
                result.update(status="clienterror", error=self._task_error("TaskExists"))
            else:
                job.tasks[folded] = Task(body=task_body)
                result.update(
                    status="success",
                    eTag="0x8D3D623CD661246",
                    lastModified=now(),
                    location=f"{self.endpoint}/jobs/{job.id}/tasks/{task_body['id']}",
                )
            results.append(result)
        return web.json_response({"value": results})

    @staticmethod
    def _task_error(code: str) -> Json:
        return {"code": code, "message": {"lang": "en-US", "value": f"{code} (stand-in)"}}

    async def list_tasks(self, request: web.Request) -> web.Response:
        self.step()
        job = self._job(request)
        tasks = [task.as_json(self.endpoint, job.id) for task in job.tasks.values()]
        return self._page(request, tasks)

    async def task_counts(self, request: web.Request) -> web.Response:
        self.step()
        job = self._job(request)
        tasks = list(job.tasks.values())
        completed = [t for t in tasks if t.state == "completed"]
        succeeded = sum(1 for t in completed if t.execution.get("result") == "success")
        counts = {
            "active": sum(1 for t in tasks if t.state in ("active", "preparing")),
            "running": sum(1 for t in tasks if t.state == "running"),
            "completed": len(completed),
            "succeeded": succeeded,
            "failed": len(completed) - succeeded,
        }
        return web.json_response({"taskCounts": counts, "taskSlotCounts": counts})
