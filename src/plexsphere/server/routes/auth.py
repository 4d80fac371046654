"""Operator authentication routes (tenancy-auth §9) and the local identity provider's sign-in and
device-approval page."""

from __future__ import annotations

import uuid
from importlib import resources

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from plexsphere import crypto
from plexsphere.domain import auth as rules
from plexsphere.domain.errors import unauthenticated
from plexsphere.server.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    OperatorPrincipal,
    bearer_token,
    check_csrf,
    require_operator,
    resolve_operator_token,
    runtime_of,
)
from plexsphere.server.body import body_doc, json_body
from plexsphere.services import auth as service
from plexsphere.wire.auth import (
    APITokenIssueRequest,
    APITokenIssueResponse,
    APITokenRotateResponse,
    APITokenSummary,
    DeviceApproveRequest,
    DeviceApproveResponse,
    DeviceCodeRequest,
    DeviceCodeResponse,
    DeviceDenyResponse,
    DeviceTokenRequest,
    LocalProvider,
    LocalSignInRequest,
    ServiceTokenResponse,
    Whoami,
)
from plexsphere.wire.common import dump

router = APIRouter(tags=["auth"])

SESSION_COOKIE_PATH = "/v1/"
# The CSRF cookie must be readable by the device page's script, which lives outside /v1/.
CSRF_COOKIE_PATH = "/"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _set_session_cookies(response: Response, request: Request, signed_in: service.SignIn) -> None:
    secure = _secure(request)
    response.set_cookie(SESSION_COOKIE, signed_in.session, max_age=signed_in.max_age, path=SESSION_COOKIE_PATH,
                        httponly=True, samesite="strict", secure=secure)
    response.set_cookie(CSRF_COOKIE, signed_in.csrf, max_age=signed_in.max_age, path=CSRF_COOKIE_PATH,
                        httponly=False, samesite="strict", secure=secure)


def _clear_session_cookies(response: Response, request: Request) -> None:
    secure = _secure(request)
    response.delete_cookie(SESSION_COOKIE, path=SESSION_COOKIE_PATH, httponly=True, samesite="strict", secure=secure)
    response.delete_cookie(CSRF_COOKIE, path=CSRF_COOKIE_PATH, samesite="strict", secure=secure)


def _base_url(request: Request) -> str:
    """Where the person approving a device should go: the configured public URL, else the URL this
    request reached us at (the same host the CLI could reach)."""
    public = runtime_of(request).settings.public_url
    return public.rstrip("/") if public else str(request.base_url).rstrip("/")


async def require_browser_session(request: Request) -> OperatorPrincipal:
    """Device approval is a browser act: the `plexsphere_session` cookie plus CSRF, never a bearer."""
    runtime = runtime_of(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = await resolve_operator_token(runtime, cookie) if cookie else None
    if principal is None:
        raise unauthenticated("sign in with a browser session to approve a device")
    check_csrf(request, runtime, principal)
    request.state.principal = principal
    return principal


# -- local identity provider -----------------------------------------------------------------------
@router.post("/v1/auth/local/sign-in", operation_id="PostAuthLocalSignIn", response_model=ServiceTokenResponse,
             openapi_extra=body_doc(LocalSignInRequest))
async def post_local_sign_in(
    request: Request, body: LocalSignInRequest = Depends(json_body(LocalSignInRequest))
) -> JSONResponse:
    source = request.client.host if request.client else "unknown"
    signed_in = await service.sign_in_local(runtime_of(request), body.username, body.password, source)
    response = JSONResponse(dump(signed_in.token), headers={"Cache-Control": "no-store"})
    _set_session_cookies(response, request, signed_in)
    return response


@router.get("/v1/auth/local/provider", operation_id="GetAuthLocalProvider", response_model=LocalProvider,
            response_model_exclude_none=True)
async def get_local_provider(
    request: Request, domain: str | None = Query(default=None, max_length=255, description="Domain slug or id")
) -> dict:
    return dump(await service.local_provider(runtime_of(request), domain))


# -- whoami / sign-out -----------------------------------------------------------------------------
@router.get("/v1/auth/whoami", operation_id="GetAuthWhoami", response_model=Whoami,
            response_model_exclude_none=True)
async def get_whoami(principal: OperatorPrincipal = Depends(require_operator)) -> dict:
    return dump(service.whoami(principal))


@router.delete("/v1/auth/whoami", operation_id="DeleteAuthSession", status_code=204)
async def delete_whoami(request: Request) -> Response:
    # Always 204 and the cookies cleared, whatever was (or was not) presented: discloses nothing.
    presented = [t for t in (bearer_token(request), request.cookies.get(SESSION_COOKIE)) if t]
    await service.sign_out(runtime_of(request), presented)
    response = Response(status_code=204)
    _clear_session_cookies(response, request)
    return response


# -- API tokens ------------------------------------------------------------------------------------
@router.get("/v1/auth/tokens", operation_id="GetAuthTokens", response_model=list[APITokenSummary],
            response_model_exclude_none=True)
async def get_tokens(request: Request, principal: OperatorPrincipal = Depends(require_operator)) -> list[dict]:
    return [dump(t) for t in await service.list_api_tokens(runtime_of(request), principal)]


@router.post("/v1/auth/tokens", operation_id="PostAuthTokens", status_code=201,
             response_model=APITokenIssueResponse, openapi_extra=body_doc(APITokenIssueRequest))
async def post_tokens(
    request: Request,
    principal: OperatorPrincipal = Depends(require_operator),
    body: APITokenIssueRequest = Depends(json_body(APITokenIssueRequest)),
) -> JSONResponse:
    issued = await service.issue_api_token(runtime_of(request), principal, body)
    return JSONResponse(dump(issued), status_code=201, headers={"Cache-Control": "no-store"})


@router.delete("/v1/auth/tokens/{id}", operation_id="DeleteAuthTokenByID", status_code=204)
async def delete_token(
    request: Request, id: uuid.UUID, principal: OperatorPrincipal = Depends(require_operator)
) -> Response:
    await service.revoke_api_token(runtime_of(request), principal, id)
    return Response(status_code=204)


@router.post("/v1/auth/tokens/{id}/rotate", operation_id="PostAuthTokenRotate",
             response_model=APITokenRotateResponse)
async def post_token_rotate(
    request: Request, id: uuid.UUID, principal: OperatorPrincipal = Depends(require_operator)
) -> JSONResponse:
    rotated = await service.rotate_api_token(runtime_of(request), principal, id)
    return JSONResponse(dump(rotated), headers={"Sunset": rules.http_date(rotated.rotation_deadline),
                                                "Cache-Control": "no-store"})


# -- device flow (RFC 8628) ------------------------------------------------------------------------
@router.post("/v1/auth/device-code", operation_id="PostAuthDeviceCode", response_model=DeviceCodeResponse,
             openapi_extra=body_doc(DeviceCodeRequest))
async def post_device_code(
    request: Request, body: DeviceCodeRequest = Depends(json_body(DeviceCodeRequest))
) -> JSONResponse:
    issued = await service.create_device_code(runtime_of(request), body, _base_url(request))
    return JSONResponse(dump(issued), headers={"Cache-Control": "no-store"})


@router.post("/v1/auth/device-token", operation_id="PostAuthDeviceToken", response_model=ServiceTokenResponse,
             openapi_extra=body_doc(DeviceTokenRequest))
async def post_device_token(
    request: Request, body: DeviceTokenRequest = Depends(json_body(DeviceTokenRequest))
) -> JSONResponse:
    token = await service.poll_device_token(runtime_of(request), body.device_code)
    return JSONResponse(dump(token), headers={"Cache-Control": "no-store"})


@router.post("/v1/auth/device/approve", operation_id="PostAuthDeviceApprove", response_model=DeviceApproveResponse,
             response_model_exclude_none=True, openapi_extra=body_doc(DeviceApproveRequest))
async def post_device_approve(
    request: Request,
    principal: OperatorPrincipal = Depends(require_browser_session),
    body: DeviceApproveRequest = Depends(json_body(DeviceApproveRequest)),
) -> dict:
    await service.decide_device(runtime_of(request), principal, body.user_code, approve=True)
    return dump(DeviceApproveResponse())


@router.post("/v1/auth/local/device/deny", operation_id="PostAuthLocalDeviceDeny", response_model=DeviceDenyResponse,
             response_model_exclude_none=True, openapi_extra=body_doc(DeviceApproveRequest))
async def post_device_deny(
    request: Request,
    principal: OperatorPrincipal = Depends(require_browser_session),
    body: DeviceApproveRequest = Depends(json_body(DeviceApproveRequest)),
) -> dict:
    await service.decide_device(runtime_of(request), principal, body.user_code, approve=False)
    return dump(DeviceDenyResponse())


@router.get("/device", operation_id="GetDeviceVerificationPage", response_class=HTMLResponse, tags=["auth"])
async def get_device_page() -> HTMLResponse:
    """The verification_uri: sign in with a local username and password, then approve or deny."""
    nonce = crypto.b64url(crypto.random_bytes(16))
    page = resources.files("plexsphere.server").joinpath("static/device.html").read_text()
    return HTMLResponse(
        page.replace("{{nonce}}", nonce),
        headers={
            "Content-Security-Policy": f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                                       "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; "
                                       "base-uri 'none'",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )
