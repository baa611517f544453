"""The template reader: tags, intrinsics, Globals, events, substitutions, outputs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from maaskit.local import cfn_yaml
from maaskit.local.intrinsics import Resolver, UnresolvableError
from maaskit.local.template import Template, TemplateError

SAMPLE = Path(__file__).parents[1] / "fixtures" / "sample_stack" / "template.yaml"
ACCOUNT = "123456789012"
BUCKET = f"maaskit-local-data-{ACCOUNT}"
FUNCTION_ARN_PREFIX = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:"
MACHINE_ARN_PREFIX = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:"


@pytest.fixture
def template() -> Template:
    return Template.load(SAMPLE)


def test_short_tags_become_long_forms() -> None:
    document = cfn_yaml.loads(
        """
        A: !Ref Thing
        B: !GetAtt Fn.Arn
        C: !Sub "x-${AWS::Region}"
        D: !If [Cond, !Ref X, !Ref AWS::NoValue]
        E: !Join ["-", [a, !Select [1, [b, c]]]]
        F: 2010-09-09
        """.replace("\n        ", "\n")
    )
    assert document["A"] == {"Ref": "Thing"}
    assert document["B"] == {"Fn::GetAtt": ["Fn", "Arn"]}
    assert document["C"] == {"Fn::Sub": "x-${AWS::Region}"}
    assert document["D"] == {"Fn::If": ["Cond", {"Ref": "X"}, {"Ref": "AWS::NoValue"}]}
    assert document["E"] == {"Fn::Join": ["-", ["a", {"Fn::Select": [1, ["b", "c"]]}]]}
    assert document["F"] == "2010-09-09"


def test_resolver_evaluates_intrinsics_and_drops_no_value() -> None:
    resolver = Resolver(
        parameters={"Env": "dev"},
        pseudo={"AWS::Region": "eu-west-1"},
        conditions={"IsDev": {"Fn::Equals": [{"Ref": "Env"}, "dev"]}},
        mappings={"Sizes": {"dev": {"Memory": 512}}},
        ref=lambda name: f"ref:{name}",
        get_att=lambda name, attribute: f"{name}.{attribute}",
    )
    value = resolver.resolve(
        {
            "sub": {"Fn::Sub": "${Env}-${AWS::Region}-${Fn.Arn}-${!Literal}-${Other}"},
            "sub_vars": {"Fn::Sub": ["${X}/${Env}", {"X": {"Ref": "Bucket"}}]},
            "join": {"Fn::Join": [",", ["a", {"Fn::Select": [0, {"Fn::Split": ["/", "b/c"]}]}]]},
            "if": {"Fn::If": ["IsDev", "yes", "no"]},
            "gone": {"Fn::If": ["IsDev", {"Ref": "AWS::NoValue"}, "kept"]},
            "list": [1, {"Ref": "AWS::NoValue"}, 2],
            "map": {"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Memory"]},
            "not": {"Fn::Not": [{"Condition": "IsDev"}]},
        }
    )
    assert value == {
        "sub": "dev-eu-west-1-Fn.Arn-${Literal}-ref:Other",
        "sub_vars": "ref:Bucket/dev",
        "join": "a,b",
        "if": "yes",
        "list": [1, 2],
        "map": 512,
        "not": False,
    }


def test_unknown_functions_say_where_they_are() -> None:
    with pytest.raises(UnresolvableError, match=r"Outputs.X: Fn::ImportValue is not supported"):
        Resolver().resolve({"Fn::ImportValue": "Shared"}, "Outputs.X")


def test_functions_merge_globals_and_resolve_their_environment(template: Template) -> None:
    functions = {f.logical_id: f for f in template.functions()}

    echo, upper = functions["EchoFunction"], functions["UpperFunction"]
    assert echo.name == "maaskit-local-EchoFunction"
    assert echo.code_dir == SAMPLE.parent / "functions" / "echo"
    assert echo.handler == "app.lambda_handler"
    assert echo.timeout_s == 10  # from Globals
    assert echo.environment == {
        "DATA_BUCKET": BUCKET,
        "LOG_LEVEL": "DEBUG",
        "GREETING": "hello",
        "PIPELINE_ARN": f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:maaskit-local-Pipeline",
    }
    assert (upper.timeout_s, upper.memory_mb) == (5, 256)
    assert upper.environment == {"DATA_BUCKET": BUCKET, "LOG_LEVEL": "DEBUG"}


def test_parameters_and_conditions_follow_overrides() -> None:
    template = Template.load(SAMPLE, parameters={"Stage": "prod"}, stack_name="demo")
    function = next(f for f in template.functions() if f.logical_id == "UpperFunction")
    assert function.environment["LOG_LEVEL"] == "WARNING"
    assert function.environment["DATA_BUCKET"] == f"demo-data-{ACCOUNT}"
    assert template.apis()[0].stage == "prod"


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(TemplateError, match="not one of"):
        Template.load(SAMPLE, parameters={"Stage": "qa"})
    with pytest.raises(TemplateError, match="no parameter Nope"):
        Template.load(SAMPLE, parameters={"Nope": "1"})


def test_bucket_gets_its_functions_s3_events(template: Template) -> None:
    (bucket,) = template.buckets()

    assert bucket.name == BUCKET
    assert [trigger.notification() for trigger in bucket.triggers] == [
        {
            "LambdaFunctionArn": f"{FUNCTION_ARN_PREFIX}maaskit-local-UpperFunction",
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"}]}},
        },
        {
            "LambdaFunctionArn": f"{FUNCTION_ARN_PREFIX}maaskit-local-BatchFunction",
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "batch/in/"}]}},
        },
    ]


def test_api_routes_come_from_api_events(template: Template) -> None:
    (api,) = template.apis()

    assert api.logical_id == "EchoApi"
    assert api.stage == "v1"
    assert api.binary_media_types == ("application/octet-stream",)
    assert api.auth == "api key"
    routes = {(route.method, route.path) for route in api.routes}
    assert routes == {("GET", "/items/{id}"), ("ANY", "/files/{proxy+}"), ("POST", "/upload")}
    assert {route.function_name for route in api.routes} == {"maaskit-local-EchoFunction"}


def test_state_machine_definition_gets_its_substitutions(template: Template) -> None:
    machines = {machine.logical_id: machine for machine in template.state_machines()}
    machine = machines["Pipeline"]

    assert machine.name == "maaskit-local-Pipeline"
    task = machine.definition["States"]["Upper"]
    assert task["Resource"].endswith(":function:maaskit-local-UpperFunction")
    assert task["Parameters"] == {"bucket": BUCKET, "key.$": "$.key"}
    training = machines["TrainingStateMachine"].definition["States"]["TrainStep"]
    assert training["Resource"] == f"{FUNCTION_ARN_PREFIX}maaskit-local-TrainFunction"


def test_outputs_resolve_what_is_known_and_note_the_rest(template: Template) -> None:
    outputs = template.outputs()

    assert outputs == {
        "ApiUrl": "https://echoapi.execute-api.us-east-1.amazonaws.com/v1/",
        "BucketName": BUCKET,
        "PipelineArn": f"{MACHINE_ARN_PREFIX}maaskit-local-Pipeline",
        "TrainingStateMachineArn": f"{MACHINE_ARN_PREFIX}maaskit-local-TrainingStateMachine",
        "UpperRoleArn": f"arn:aws:iam::{ACCOUNT}:role/maaskit-local-UpperFunctionRole",
    }
    assert any("Imported" in note for note in template.notes)


def test_a_route_added_to_the_template_is_picked_up(tmp_path: Path) -> None:
    # Given a copy of the template with one more Api event
    text = SAMPLE.read_text().replace(
        "        Upload:\n",
        "        Health:\n          Type: Api\n          Properties:\n"
        "            RestApiId: !Ref EchoApi\n            Path: /health\n"
        "            Method: get\n        Upload:\n",
    )
    copy = tmp_path / "template.yaml"
    copy.write_text(text)

    # Then the route is there with no code change
    routes = {(r.method, r.path) for r in Template.load(copy).apis()[0].routes}
    assert ("GET", "/health") in routes


def test_implicit_api_gets_the_prod_stage() -> None:
    template = Template(
        {
            "Resources": {
                "Fn": {
                    "Type": "AWS::Serverless::Function",
                    "Properties": {
                        "CodeUri": "fn",
                        "Handler": "app.handler",
                        "Events": {
                            "Root": {"Type": "Api", "Properties": {"Path": "/", "Method": "GET"}}
                        },
                    },
                }
            },
            "Outputs": {
                "Url": {"Value": {"Fn::Sub": "https://${ServerlessRestApi}.execute-api.x/Prod/"}}
            },
        }
    )
    (api,) = template.apis()
    assert (api.logical_id, api.stage) == ("ServerlessRestApi", "Prod")
    assert api.routes[0].path == "/"
    assert template.outputs()["Url"] == "https://serverless.execute-api.x/Prod/"


def test_the_real_templates_deployment_only_resources_leave_the_local_stack_whole() -> None:
    # Given the project's template with every optional limit and log turned on: it declares
    # resources the local stack does not create (log groups, roles, queues, account settings)
    real = Path(__file__).parents[2] / "template.yaml"
    template = Template.load(
        real,
        parameters={
            "ApiReservedConcurrency": "5",
            "BatchReservedConcurrency": "3",
            "AccessLogBucket": "access-logs",
        },
    )
    kinds = {resource["Type"] for resource in template.resources.values()}
    assert {"AWS::Logs::LogGroup", "AWS::SQS::Queue", "AWS::ApiGateway::Account"} <= kinds

    # Then every function, route, bucket trigger and state machine is still described
    functions = [r for r in template.resources.values() if r["Type"] == "AWS::Serverless::Function"]
    assert len(template.functions()) == len(functions)
    (api,) = template.apis()
    assert ("POST", "/models/{name}/predict") in {(r.method, r.path) for r in api.routes}
    (bucket,) = template.buckets()
    assert bucket.triggers
    assert len(template.state_machines()) == 2
    # And what is left out is only outputs that name AWS-only resources
    template.outputs()
    assert all(note.startswith("output ") for note in template.notes), template.notes


def test_the_integrity_alarm_watches_the_metric_the_api_emits() -> None:
    # Given the real template and the API handler's source
    root = Path(__file__).parents[2]
    document = cfn_yaml.loads((root / "template.yaml").read_text())
    handler = (root / "functions" / "api" / "app.py").read_text()
    namespace = document["Globals"]["Function"]["Environment"]["Variables"][
        "POWERTOOLS_METRICS_NAMESPACE"
    ]
    # Then an alarm sums IntegrityFailures over every model in that namespace, from the first
    alarm = document["Resources"]["IntegrityFailuresAlarm"]["Properties"]
    [query] = alarm["Metrics"]
    assert query["Expression"] == (
        f"SELECT SUM(IntegrityFailures) FROM SCHEMA({namespace}, model, service)"
    )
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    # And the handler emits exactly that metric with that dimension
    assert 'metrics.record("IntegrityFailures", 1, "Count", {"model": name})' in handler


def test_the_training_functions_share_one_folder_each_with_its_own_entry_point() -> None:
    # Given the project's template, read as the local stack reads it
    root = Path(__file__).parents[2]
    template = Template.load(root / "template.yaml")
    machine = template.resources["TrainingStateMachine"]["Properties"]
    training_ids = {value["Fn::GetAtt"][0] for value in machine["DefinitionSubstitutions"].values()}
    training = [f for f in template.functions() if f.logical_id in training_ids]
    # And the entry points the training module defines
    module = ast.parse((root / "functions" / "training" / "app.py").read_text())
    entry_points = {node.name for node in module.body if isinstance(node, ast.FunctionDef)}

    # Then every state's function runs that module, each through an entry point of its own
    assert len(training) == len(training_ids) == 10
    assert {f.code_dir for f in training} == {root / "functions" / "training"}
    handlers = [f.handler for f in training]
    assert len(set(handlers)) == len(handlers), handlers
    assert {h.removeprefix("app.") for h in handlers} <= entry_points
    assert all(h.startswith("app.") for h in handlers)
    # And no entry point is left without a function
    assert {h.removeprefix("app.") for h in handlers} == {
        name for name in entry_points if not name.startswith("_")
    }
