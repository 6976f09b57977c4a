// A file as a request body with upload progress: fetch cannot report it, XMLHttpRequest can.
// upload("/v1/datasets", file, {query, contentType, onProgress(sent, total)}) resolves with the
// parsed JSON answer, or rejects with an ApiError carrying the problem's detail. The key is the
// one lib/api.js keeps; a 401 asks for it once and sends the file again.
import { ApiError, apiUrl, askForKey, authHeaders } from "./api.js";

export function upload(path, file, { query, contentType, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", apiUrl(path, query));
    for (const [k, v] of Object.entries(authHeaders({ "Content-Type": contentType || "application/octet-stream" }))) {
      xhr.setRequestHeader(k, v);
    }
    xhr.upload.onprogress = (e) => { if (onProgress) onProgress(e.loaded, e.lengthComputable ? e.total : file.size); };
    xhr.onerror = () => reject(new Error(`the upload failed: the server could not be reached`));
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText || "{}"); } catch { /* not JSON */ }
      if (xhr.status === 401 && askForKey()) {
        upload(path, file, { query, contentType, onProgress }).then(resolve, reject);
      } else if (xhr.status >= 200 && xhr.status < 300) {
        if (onProgress) onProgress(file.size, file.size);
        resolve(body);
      } else {
        reject(new ApiError(xhr.status, body));
      }
    };
    xhr.send(file);
  });
}

// The Content-Type for a file, by its extension.
export function contentTypeOf(filename) {
  const ext = filename.toLowerCase().split(".").pop();
  return ext === "csv" ? "text/csv" : "application/octet-stream";
}
