"""One ``POST /restaurants/{restaurant_id}/commands/<name>`` route per command.

The routes are generated from :data:`COMMAND_METHODS`, so a new command is served (and
documented) without touching this module. A request body is the command model without the
fields the request does not decide: ``restaurant_id`` (the path), ``actor_id`` and
``actor_role`` (the API key). A body naming any of them is ``INVALID_INPUT``: a caller
cannot choose who it is or, through the body, where it acts. ``command_id`` comes from the
body or the ``Idempotency-Key`` header; re-sending a command with the same id returns the
original answer and writes nothing.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Annotated, Any, get_type_hints

from fastapi import APIRouter, Header
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, field_validator
from pydantic.json_schema import SkipJsonSchema

from seatledger.application.commands import COMMAND_METHODS, Command
from seatledger.application.http.access import CALLER, Caller
from seatledger.application.http.problems import PROBLEM_RESPONSES
from seatledger.application.http.served import Served
from seatledger.application.service import AssignmentService
from seatledger.domain.errors import InvalidInputError

#: Command fields the request body never sets, and what decides them.
FROM_REQUEST_CONTEXT = {
    "restaurant_id": "the path",
    "actor_id": "the API key",
    "actor_role": "the API key",
}

TAGS: dict[str, str] = {
    **dict.fromkeys(
        (
            "create_restaurant",
            "define_zone",
            "define_table",
            "link_tables",
            "unlink_tables",
            "change_policy",
        ),
        "layout",
    ),
    **dict.fromkeys(
        ("register_booking", "cancel_booking", "mark_no_show", "complete_booking"), "bookings"
    ),
    **dict.fromkeys(("place_hold", "extend_hold", "release_hold", "expire_holds"), "holds"),
    **dict.fromkeys(("confirm_hold", "assign_tables", "unassign_tables"), "assignments"),
    **dict.fromkeys(("quote", "auto_assign"), "automation"),
}


def command_path(method: str) -> str:
    return "/restaurants/{restaurant_id}/commands/" + method.replace("_", "-")


def request_model(command: type[Command]) -> type[BaseModel]:
    """The body of a command's route: its fields minus the request context. Only the shape
    is checked here; the service validates the whole command (and its input contract)."""
    fields: dict[str, Any] = {}
    for name, info in command.model_fields.items():
        if name in FROM_REQUEST_CONTEXT:
            continue
        if name == "command_id":
            fields[name] = (
                str | None,
                Field(
                    default=None,
                    min_length=1,
                    max_length=200,
                    description="names this intent: a re-send with the same id returns the "
                    "original answer (or send the Idempotency-Key header)",
                ),
            )
        else:
            fields[name] = (info.annotation, copy.copy(info))
    for name in FROM_REQUEST_CONTEXT:  # refused by name, and left out of the schema
        hidden = Annotated[Any, SkipJsonSchema()]
        fields[name] = (hidden, Field(default=None, exclude=True))
    model: type[BaseModel] = create_model(
        f"{command.__name__}Request",
        __config__=ConfigDict(extra="forbid"),
        __doc__=command.__doc__,
        __validators__={"_context_fields": field_validator(*FROM_REQUEST_CONTEXT)(_refuse)},
        **fields,
    )
    return model


def _refuse(cls: type[BaseModel], value: object, info: ValidationInfo) -> object:
    name = str(info.field_name)
    raise ValueError(f"{name} is set by {FROM_REQUEST_CONTEXT[name]}, never by the body")


def _command_id(in_body: str | None, in_header: str | None) -> str | None:
    if in_body is not None and in_header is not None and in_body != in_header:
        raise InvalidInputError(
            "the body's command_id and the Idempotency-Key header differ",
            details={
                "errors": [
                    {
                        "field": "command_id",
                        "error": "differs from the Idempotency-Key header",
                        "type": "command_id_mismatch",
                    }
                ]
            },
        )
    return in_body if in_body is not None else in_header


def _endpoint(service: Served, method: str, body_model: type[BaseModel]) -> Callable[..., Any]:
    run = getattr(service, method)

    def endpoint(caller: Caller, body: BaseModel, idempotency_key: str | None) -> Any:
        fields = body.model_dump(exclude_unset=True)
        command_id = _command_id(fields.pop("command_id", None), idempotency_key)
        fields.update(
            restaurant_id=caller.restaurant_id,
            actor_id=caller.principal.actor_id,
            actor_role=caller.principal.role,
        )
        if command_id is not None:
            fields["command_id"] = command_id
        return run(fields)

    keyword = inspect.Parameter.KEYWORD_ONLY
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("caller", keyword, annotation=Caller, default=CALLER),
            inspect.Parameter("body", keyword, annotation=body_model),
            inspect.Parameter(
                "idempotency_key",
                keyword,
                annotation=str | None,
                default=Header(
                    default=None,
                    alias="Idempotency-Key",
                    min_length=1,
                    max_length=200,
                    description="the command id (re-sends with the same key are safe)",
                ),
            ),
        ]
    )
    endpoint.__name__ = method
    return endpoint


def command_router(service: Served) -> APIRouter:
    router = APIRouter(responses=PROBLEM_RESPONSES)
    for command, method in COMMAND_METHODS.items():
        body_model = request_model(command)
        result = get_type_hints(getattr(AssignmentService, method))["return"]
        router.add_api_route(
            command_path(method),
            _endpoint(service, method, body_model),
            methods=["POST"],
            response_model=result,
            operation_id=method,
            name=method,
            summary=f"{command.__name__} ({method})",
            description=inspect.cleandoc(command.__doc__ or method),
            tags=[TAGS.get(method, "commands")],
        )
    return router
