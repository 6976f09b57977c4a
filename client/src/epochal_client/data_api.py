"""The calls of data sets and models: upload, list, show, delete; download, predict, evaluate."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from epochal_client.models import Dataset, Evaluation, Prediction
from epochal_client.transfer import FileChunks, Progress, csv_body
from epochal_client.transport import Transport

# How long an upload waits for the answer once its file is sent: the server reads and checks
# the file for up to EPOCHAL_UPLOAD_TIMEOUT_SECONDS (120 s by default) before it answers, so the
# client's usual 30 s would resend a file the server is still reading.
UPLOAD_READ_SECONDS = 300.0


class DataAPI(Transport):
    def datasets(self) -> list[Dataset]:
        """The built-in data sets, then the project's uploads (newest first)."""
        return [Dataset.model_validate(d) for d in self._request("GET", "/v1/datasets")]

    def dataset(self, name: str) -> Dataset:
        """A built-in data set by its name, or an upload by its id."""
        return Dataset.model_validate(self._request("GET", f"/v1/datasets/{name}"))

    def delete_dataset(self, name: str) -> None:
        """Delete an upload (409 while a queued or running job names it)."""
        self._request("DELETE", f"/v1/datasets/{name}")

    def upload_dataset(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        target: str | None = None,
        task: str | None = None,
        format: str | None = None,
        on_progress: Progress | None = None,
    ) -> Dataset:
        """Upload a CSV, NPZ or Parquet file (streamed in chunks, never read whole) into the
        project. `name` defaults to the file's stem; `target` names a table's column to predict;
        `task` is classification or regression; `format` (csv, npz, parquet) overrides what the
        file's first bytes tell. `on_progress(sent, total)` sees the bytes as they go. Sent with
        an Idempotency-Key, so a retry after a dropped connection never stores two; a retry
        that finds the first upload still being read waits for its answer."""
        chunks = FileChunks(Path(path), on_progress)
        query = {"name": chunks.path.stem if name is None else name}
        for key, value in (("target", target), ("task", task), ("format", format)):
            if value is not None:
                query[key] = value
        headers = {"Content-Type": chunks.content_type(), "Content-Length": str(chunks.size)}
        timeout = httpx.Timeout(self._http.timeout.connect, read=UPLOAD_READ_SECONDS)
        body = self._request(
            "POST",
            "/v1/datasets",
            params=query,
            content=chunks,
            headers=headers,
            timeout=timeout,
            idempotent=True,
        )
        return Dataset.model_validate(body)

    def download_model(
        self,
        job_id: str,
        path: str | os.PathLike[str],
        format: str = "safetensors",
        checkpoint: str | None = None,
    ) -> Path:
        """Save a succeeded job's model at `path`: its weights (`safetensors`), or an `onnx` or
        `torchscript` export; `checkpoint="best"|"last"` saves that checkpoint's weights instead
        (safetensors only). Streamed to a temporary file beside `path` and renamed when
        complete: after an API error nothing is left at `path`. Returns the path."""
        query = {"format": format}
        if checkpoint is not None:
            query["checkpoint"] = checkpoint
        return self._download(f"/v1/jobs/{job_id}/model", query, Path(path))

    def predict(
        self,
        job_id: str,
        inputs: Sequence[Any] | None = None,
        records: Sequence[Mapping[str, Any]] | None = None,
        csv: str | os.PathLike[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The job's outputs for one of: `inputs` (encoded vectors or arrays, numpy included),
        `records` (a table's rows as {column: value}) or `csv` (rows under the training header:
        the text, or a file's path, sent as text/csv). Per input: {"label", "probabilities"}
        (and "class" for a labelled upload) for a classifier, {"value"} for a regression."""
        return self.prediction(job_id, inputs=inputs, records=records, csv=csv).outputs

    def prediction(
        self,
        job_id: str,
        inputs: Sequence[Any] | None = None,
        records: Sequence[Mapping[str, Any]] | None = None,
        csv: str | os.PathLike[str] | None = None,
    ) -> Prediction:
        """As `predict`, the whole answer: the outputs with the job id and the class labels in
        probability order (`classes`, None for a regression or unnamed classes), which the
        model keeps after its data set is deleted."""
        if sum(x is not None for x in (inputs, records, csv)) != 1:
            raise ValueError("predict: expected exactly one of inputs, records or csv")
        url = f"/v1/jobs/{job_id}/predict"
        if csv is not None:
            headers = {"Content-Type": "text/csv"}
            body = self._request("POST", url, content=csv_body(csv), headers=headers)
        else:
            if records is not None:
                payload = {"records": [dict(r) for r in records]}
            else:
                rows = inputs.tolist() if hasattr(inputs, "tolist") else list(inputs or [])
                payload = {"inputs": rows}
            # json.dumps writes NaN and infinities as Python reads them (httpx's json= refuses
            # them here), so the API's 422 names the input or row that holds one.
            headers = {"Content-Type": "application/json"}
            content = json.dumps(payload).encode()
            body = self._request("POST", url, content=content, headers=headers)
        return Prediction.model_validate(body)

    def evaluate(self, job_id: str, dataset: str) -> Evaluation:
        """A succeeded job's loss and metrics on a data set (a built-in name or an upload id)."""
        body = self._request("POST", f"/v1/jobs/{job_id}/evaluate", json={"dataset": dataset})
        return Evaluation.model_validate(body)
