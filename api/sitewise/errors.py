"""SiteWise's error wire format, and the one mapping from the model layer's errors to it.

    raise ModelExists("Asset model ... already exists.", model_id, "asset-model")   # asset_models
    sitewise_error(exc)    # -> ApiError("ResourceAlreadyExistsException", ..., {"resourceId", "resourceArn"})
    error_response(api_error)                                                        # -> the HTTP answer

A refused request answers with the HTTP status of the error shape, the ``x-amzn-ErrorType``
header and a body ``{"message": ...}`` plus the members the shape has besides it
(``resourceId`` and ``resourceArn`` for ``ResourceAlreadyExistsException`` and
``ConflictingOperationException``). The app's exception handlers and the routes that report
errors per entry (``errorEntries``) all go through :func:`sitewise_error`.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from api.sitewise.render import arn
from asset_models.errors import ModelConflict, ModelExists, ModelInvalid, ModelNotFound
from sitewise_edge.errors import ApiError, ModelError


def sitewise_error(exc: ApiError | ModelError) -> ApiError:
    """The SiteWise error for ``exc``: an ApiError as it is, a model error mapped to its code.

    ``ModelNotFound`` is ``ResourceNotFoundException``; ``ModelExists`` is ``ResourceAlreadyExistsException``
    and any other ``ModelConflict`` ``ConflictingOperationException``, both naming the resource; every other
    model error (``ModelInvalid``, ``ExpressionError``) is ``InvalidRequestException``.
    """
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ModelNotFound):
        return ApiError("ResourceNotFoundException", str(exc))
    if isinstance(exc, ModelConflict):
        code = "ResourceAlreadyExistsException" if isinstance(exc, ModelExists) else "ConflictingOperationException"
        return ApiError(code, str(exc), {"resourceId": exc.resource_id,
                                         "resourceArn": arn(exc.resource_type, exc.resource_id)})
    message = "; ".join(exc.problems) if isinstance(exc, ModelInvalid) else str(exc)  # one message, many problems
    return ApiError("InvalidRequestException", message)


def error_response(exc: ApiError, status: int | None = None) -> JSONResponse:
    """The HTTP answer for ``exc``: its status (or ``status``), the error-type header and the body."""
    return JSONResponse({"message": exc.message, **exc.fields}, status_code=status or exc.status,
                        headers={"x-amzn-ErrorType": exc.code})
