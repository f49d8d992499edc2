"""The OpenAPI 3.1 document of the REST part, served at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any

from . import labels, matter, problems, xr

_STATE = {
    "type": "object",
    "required": ["entity_id", "state", "attributes", "last_changed", "last_updated"],
    "properties": {
        "entity_id": {"type": "string", "example": "light.kitchen_ceiling"},
        "state": {"type": "string"},
        "attributes": {"type": "object"},
        "last_changed": {"type": "string", "format": "date-time"},
        "last_updated": {"type": "string", "format": "date-time"},
        "context": {"type": "object", "properties": {"id": {"type": ["string", "null"]},
                                                     "parent_id": {"type": ["string", "null"]},
                                                     "user_id": {"type": ["string", "null"]}}},
    },
}
_MESSAGE = {"type": "object", "properties": {"message": {"type": "string"}}}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _err(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Message"}, description)


_COMMON = {"401": _err("Missing or invalid token"), "403": _err("Origin not allowed or token scope too narrow"),
           "429": _err("Too many failed logins from this address")}


def openapi_document(version: str) -> dict[str, Any]:
    state_ref = {"$ref": "#/components/schemas/State"}
    history_params = [
        {"name": "filter_entity_id", "in": "query", "schema": {"type": "string"},
         "description": "Comma-separated entity ids"},
        {"name": "end_time", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "minimal_response", "in": "query", "allowEmptyValue": True, "schema": {"type": "string"}},
        {"name": "no_attributes", "in": "query", "allowEmptyValue": True, "schema": {"type": "string"}},
    ]
    history = {
        "summary": "State history from the recorder, one list per entity",
        "parameters": history_params,
        "responses": {"200": _json({"type": "array", "items": {"type": "array", "items": state_ref}}),
                      "400": _err("Invalid time"), **_COMMON},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "qilu-hub REST API (Home Assistant-compatible)", "version": version},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A token from `qilu-hub token create`"}},
            "schemas": {"State": _STATE, "Message": _MESSAGE, "Label": labels.LABEL_SCHEMA,
                        "LabelError": labels.LABEL_ERROR_SCHEMA, "Problem": problems.PROBLEM_SCHEMA},
        },
        "paths": {
            "/api/health": {"get": {"summary": "Liveness (no token needed)", "security": [],
                                    "responses": {"200": _json({"type": "object"})}}},
            "/api/tls/ca.crt": {"get": {
                "summary": "The hub's own CA certificate (hub.tls: auto; no token needed): DER, or PEM with "
                           "?format=pem", "security": [],
                "parameters": [{"name": "format", "in": "query", "required": False,
                                "schema": {"type": "string", "enum": ["der", "pem"]}}],
                "responses": {"200": {"description": "The CA certificate", "content": {
                    "application/x-x509-ca-cert": {}, "application/x-pem-file": {}}},
                    "404": _err("The hub serves no certificate of its own")}}},
            "/api/tls": {"get": {"summary": "HTTPS status: CA and server certificate fingerprints, names, expiry",
                                 "responses": {"200": _json({"type": "object"}), **_COMMON}}},
            "/api/": {"get": {"summary": "API is running", "responses": {"200": _err("API running."), **_COMMON}}},
            "/api/config": {"get": {"summary": "Hub configuration (Home Assistant's get_config shape)",
                                    "responses": {"200": _json({"type": "object"}), **_COMMON}}},
            "/api/states": {"get": {"summary": "All states visible to the token",
                                    "responses": {"200": _json({"type": "array", "items": state_ref}), **_COMMON}}},
            "/api/states/{entity_id}": {"get": {
                "summary": "One entity's state",
                "parameters": [{"name": "entity_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json(state_ref), "404": _err("Entity not found."), **_COMMON}}},
            "/api/services": {"get": {
                "summary": "Services per domain, with their fields and selectors (Home Assistant's shape)",
                "responses": {"200": _json({"type": "array", "items": {
                    "type": "object", "required": ["domain", "services"],
                    "properties": {"domain": {"type": "string"}, "services": {"type": "object"}}}}),
                    **_COMMON}}},
            "/api/services/{domain}/{service}": {"post": {
                "summary": "Call a service (a capability command) on the targeted entities",
                "parameters": [
                    {"name": "domain", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "service", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {"entity_id": {"oneOf": [{"type": "string"},
                                                           {"type": "array", "items": {"type": "string"}}]},
                                   "area_id": {"type": "string"}, "device_id": {"type": "string"}},
                    "additionalProperties": True}}}},
                "responses": {"200": _json({"type": "array", "items": state_ref}, "States changed by the call"),
                              "400": _err("Bad arguments"), "404": _err("Service or entity not found"),
                              "502": _err("The driver failed"), "503": _err("Device unavailable"),
                              "504": _err("The device did not answer in time"), **_COMMON}}},
            "/api/history/period": {"get": {**history, "summary": "History of the last day"}},
            "/api/history/period/{start}": {"get": {
                **history,
                "parameters": [{"name": "start", "in": "path", "required": True,
                                "schema": {"type": "string", "format": "date-time"}}, *history_params]}},
            **labels.openapi_paths(_COMMON),
            **xr.openapi_paths(_COMMON),
            **matter.openapi_paths(_COMMON),
            **problems.openapi_paths(_COMMON),
            "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}},
        },
    }
