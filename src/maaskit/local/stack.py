"""The local stack: embedded AWS + template deployment + Lambda router + local API, as one.

    with LocalStack(StackOptions(template=Path("template.yaml"))) as stack:
        print(stack.api_url, stack.aws_endpoint_url, stack.outputs)

Start order: moto server, router, resources from the template (saved bucket data restored
before notifications are wired), the stack's outputs recorded in the embedded
CloudFormation (so clients find the bucket and state machines as they would on AWS), then
the API front. Stop runs the other way and saves the bucket one last time.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from maaskit.errors import MaaskitError
from maaskit.local import resources
from maaskit.local.api_server import LocalApi
from maaskit.local.aws import EmbeddedAws
from maaskit.local.deploy import Deployment, deploy
from maaskit.local.lambda_router import Invocation, LambdaRouter
from maaskit.local.persistence import BucketFolder
from maaskit.local.template import BucketDef, Template

log = logging.getLogger("maaskit-local")

DEFAULT_API_PORT = 3000
DEFAULT_AWS_PORT = 5000
_DEPLOYED_API_URL = re.compile(r"https://[^/\s]+\.execute-api\.[^/\s]+/[^/\s]+/?")


@dataclass(frozen=True)
class StackOptions:
    template: Path = Path("template.yaml")
    host: str = "127.0.0.1"
    api_port: int = DEFAULT_API_PORT  # 0: any free port
    aws_port: int = DEFAULT_AWS_PORT  # 0: any free port
    data_dir: Path | None = None  # None: in memory only
    stack_name: str = "maaskit-local"
    region: str = "us-east-1"
    parameters: Mapping[str, str] = field(default_factory=dict)
    save_interval_s: float = 30.0
    enforce_timeouts: bool = True


class StackError(MaaskitError):
    """The local stack could not start; the message says why."""


class LocalStack:
    """One running local stack. moto's state is per process, so one per process at a time."""

    _running: ClassVar[LocalStack | None] = None
    _running_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.aws = EmbeddedAws(
            host=self.options.host, port=self.options.aws_port, region=self.options.region
        )
        self.router = LambdaRouter(enforce_timeouts=self.options.enforce_timeouts)
        self.template: Template | None = None
        self.deployment = Deployment()
        self.api: LocalApi | None = None
        self.outputs: dict[str, str] = {}
        self._folders: list[BucketFolder] = []
        self._saver: threading.Thread | None = None
        self._stopping = threading.Event()

    # lifecycle ------------------------------------------------------------------------

    def start(self) -> LocalStack:
        with LocalStack._running_lock:
            if LocalStack._running is not None:
                raise StackError("a local stack already runs in this process; stop it first")
            LocalStack._running = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        options = self.options
        self.template = Template.load(
            options.template,
            stack_name=options.stack_name,
            region=options.region,
            parameters=options.parameters,
        )
        self.aws.start()
        self.router.install()
        self.deployment = deploy(
            self.template,
            self.router,
            self.aws.client,
            endpoint_url=self.aws.endpoint_url,
            before_notifications=self._restore,
        )
        self.router.keep_common_environment()  # this process exists to run the functions
        self.api = LocalApi(
            self.deployment.apis,
            self._invoke_from_api,
            host=options.host,
            port=options.api_port,
            account_id=self.template.account_id,
        )
        self.api.start()
        self.outputs = {key: self._localise(v) for key, v in self.deployment.outputs.items()}
        resources.publish_outputs(
            self.aws.client("cloudformation"), options.stack_name, self.outputs
        )
        if self._folders and options.save_interval_s > 0:
            self._saver = threading.Thread(
                target=self._save_periodically, name="maaskit-local-saver", daemon=True
            )
            self._saver.start()

    def stop(self) -> None:
        """Stop everything that was started; safe to call twice or after a failed start."""
        self._stopping.set()
        if self.api is not None:
            self.api.stop()
            self.api = None
        if self._saver is not None:
            self._saver.join(timeout=30)
            self._saver = None
        if self._folders and self.aws.running:
            try:
                self.save()
            except Exception:
                log.exception("could not save the bucket to %s", self.options.data_dir)
        self.router.uninstall()
        self.aws.stop()
        with LocalStack._running_lock:
            if LocalStack._running is self:
                LocalStack._running = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # what clients need ----------------------------------------------------------------

    @property
    def api_url(self) -> str:
        if self.api is None:
            raise StackError("the local stack is not running")
        return self.api.url

    @property
    def aws_endpoint_url(self) -> str:
        return self.aws.endpoint_url

    @property
    def bucket(self) -> str:
        """The bucket of the stack (the first one, if the template declares several)."""
        if not self.deployment.buckets:
            raise StackError("the template declares no bucket")
        return next(iter(self.deployment.buckets.values()))

    def _localise(self, value: str) -> str:
        """Outputs point at the local API instead of an execute-api host."""
        return _DEPLOYED_API_URL.sub(self.api_url, value)

    def _invoke_from_api(self, function_name: str, event: dict[str, object]) -> Invocation:
        return self.router.invoke(function_name, event, source="API request")

    # persistence ----------------------------------------------------------------------

    def _restore(self, buckets: list[BucketDef]) -> None:
        if self.options.data_dir is None:
            return
        s3 = self.aws.client("s3")
        for bucket in buckets:
            folder = BucketFolder(self.options.data_dir, bucket.name)
            restored = folder.restore(s3)
            if restored:
                log.info("restored %d objects into %s from %s", restored, bucket.name, folder.root)
            self._folders.append(folder)

    def save(self) -> int:
        """Write the buckets' changes to the data folder now; return how many objects."""
        s3 = self.aws.client("s3")
        return sum(folder.save(s3) for folder in self._folders)

    def _save_periodically(self) -> None:
        while not self._stopping.wait(self.options.save_interval_s):
            try:
                self.save()
            except Exception:
                log.exception("could not save the bucket to %s", self.options.data_dir)

    # presentation ---------------------------------------------------------------------

    def describe(self) -> str:
        """What a person needs once the stack is up: URLs, resources, how to stop."""
        options = self.options
        lines = [f"maaskit local stack '{options.stack_name}' is up ({options.template})"]
        for api in self.deployment.apis:
            auth = "" if api.auth == "none" else f"; deployed it needs {api.auth}"
            lines.append(
                f"  API            {self.api_url}  (also under /{api.stage}/; "
                f"no API key or signature needed locally{auth})"
            )
        lines.append(
            f"  AWS endpoint   {self.aws_endpoint_url}  "
            f"(export AWS_ENDPOINT_URL={self.aws_endpoint_url}; any credentials)"
        )
        for logical_id, name in self.deployment.buckets.items():
            lines.append(f"  bucket         {name}  ({logical_id})")
        for logical_id, spec in self.deployment.functions.items():
            lines.append(f"  function       {spec.name}  ({logical_id})")
        for logical_id, arn in self.deployment.state_machines.items():
            lines.append(f"  state machine  {arn.rsplit(':', 1)[-1]}  ({logical_id})")
        for api in self.deployment.apis:
            for route in api.routes:
                lines.append(f"  route          {route.method:6} {route.path}")
        if options.data_dir is None:
            lines.append(
                "  data           in memory only (--data DIR keeps the bucket between runs)"
            )
        else:
            lines.append(
                f"  data           {options.data_dir} (saved every {options.save_interval_s:g} s "
                "and on exit)"
            )
        return "\n".join(lines)
