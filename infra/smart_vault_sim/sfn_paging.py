"""GetExecutionHistory in pages, as Step Functions answers it (moto returns every event at once,
so a reader of the first page only would pass against moto and miss events on AWS).

AWS Step Functions API Reference, GetExecutionHistory
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html):
"maxResults: The maximum number of results that are returned per call. You can use nextToken to
obtain further pages of results. The default is 100 and the maximum allowed page size is 1000.
A value of 0 uses the default."; "If nextToken is returned, there are more results available
... Using an expired pagination token will return an HTTP 400 InvalidToken error.";
"reverseOrder: Lists events in descending order of their timeStamp."
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from typing import Any

from moto.core.responses import ActionResult
from moto.stepfunctions.exceptions import InvalidToken
from moto.stepfunctions.responses import StepFunctionResponse

from smart_vault_sim.moto_speed import replaced

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _token(arn: str, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([arn, offset]).encode()).decode()


def _offset(token: str | None, arn: str) -> int:
    """Where the page of ``token`` starts; a token of another execution is refused as AWS does."""
    if not token:
        return 0
    try:
        token_arn, offset = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise InvalidToken(token) from None
    if token_arn != arn or not isinstance(offset, int) or offset < 0:
        raise InvalidToken(token)
    return offset


@contextlib.contextmanager
def paginated() -> Iterator[None]:
    original = StepFunctionResponse.get_execution_history

    def get_execution_history(self: Any) -> ActionResult:
        result = original(self)
        answer: dict[str, Any] = result.result  # type: ignore[assignment]
        arn = self._get_param("executionArn")
        events = list(answer["events"])
        if self._get_param("reverseOrder"):
            events.reverse()
        size = min(int(self._get_param("maxResults") or 0) or DEFAULT_PAGE, MAX_PAGE)
        start = _offset(self._get_param("nextToken"), arn)
        answer["events"] = events[start : start + size]
        answer.pop("nextToken", None)
        if start + size < len(events):
            answer["nextToken"] = _token(arn, start + size)
        return result

    with replaced([(StepFunctionResponse, "get_execution_history", get_execution_history)]):
        yield
