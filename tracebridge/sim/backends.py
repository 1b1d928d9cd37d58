"""Chat backends for model-backed roles: a local transformers model and an OpenAI-compatible
HTTP endpoint (``POST {base_url}/v1/chat/completions`` through ``urllib``).

``chat(messages, tools=None, seed=None)`` returns a ``ModelCall``: the rendered prompt (the text
after the chat template for a local model; the JSON message list for HTTP), sampling params, the
raw reply and usage. Transport failures raise ``BackendError`` with a taxonomy kind (``timeout``
or ``runtime_error``); a reply the role cannot parse is the role's business (``InvalidOutput``).
Heavy imports (torch) happen inside the functions.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.request
from typing import Any, Protocol

from tracebridge.schema.roles import tool_call_text
from tracebridge.sim.policies import ModelCall

log = logging.getLogger(__name__)


class BackendError(RuntimeError):
    """The backend could not produce a reply (transport, server error)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ChatBackend(Protocol):
    name: str
    params: dict[str, Any]

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
             seed: int | None = None) -> ModelCall:
        """One chat completion. Raises BackendError."""


class TransformersBackend:
    """A local causal LM and its tokenizer, prompted through the tokenizer's chat template.

    Args:
        model: a transformers causal LM (any size; tiny random-init in tests).
        tokenizer: its tokenizer, with a chat template.
        name: label recorded as the model of each call.
        max_new_tokens: tokens generated per call.
        temperature: 0 = greedy; > 0 samples (``torch.manual_seed(seed)`` per call).
        top_p: nucleus sampling when sampling.

    Raises:
        ValueError: ``max_new_tokens`` leaves no position of the model (``max_position_embeddings``)
            to the prompt; generating past them gives garbage (rotary) or an index error (learned).
    """

    def __init__(self, model: Any, tokenizer: Any, *, name: str = "local", max_new_tokens: int = 64,
                 temperature: float = 0.0, top_p: float = 1.0) -> None:
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        limit = limit if isinstance(limit, int) and limit > 0 else 0  # 0 = unknown: prompts are not cut
        if limit and max_new_tokens >= limit:
            raise ValueError(f"{name}: max_new_tokens={max_new_tokens} leaves no room for the prompt in the model's "
                             f"max_position_embeddings={limit}; use max_new_tokens < {limit}")
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.prompt_limit = limit - max_new_tokens if limit else 0  # the tokens a prompt keeps (its last ones)
        self.params = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                       "do_sample": temperature > 0}

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
             seed: int | None = None) -> ModelCall:
        """One chat completion generated locally from the chat-templated prompt.

        An over-long prompt is cut to its last tokens so that the reply still fits the context.

        Args:
            seed: torch seed when sampling (None = 0); greedy decoding ignores it.

        Returns:
            A ``ModelCall`` whose prompt is the templated text.
        """
        import torch

        tok, p = self.tokenizer, self.params
        prompt = tok.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
        ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        if self.prompt_limit and ids.shape[1] > self.prompt_limit:  # keep the end of an over-long prompt
            ids = ids[:, -self.prompt_limit:]
            log.warning("%s: prompt cut to its last %d tokens", self.name, ids.shape[1])
        kw: dict[str, Any] = {"max_new_tokens": p["max_new_tokens"], "do_sample": p["do_sample"],
                              "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id}
        if p["do_sample"]:
            kw.update(temperature=p["temperature"], top_p=p["top_p"])
            torch.manual_seed(seed if seed is not None else 0)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        device = next(self.model.parameters()).device
        t0 = time.perf_counter()
        with torch.no_grad():
            out = self.model.generate(input_ids=ids.to(device), attention_mask=torch.ones_like(ids).to(device), **kw)
        new = out[0, ids.shape[1]:]
        text = tok.decode(new, skip_special_tokens=True)
        usage = {"input_tokens": int(ids.shape[1]), "output_tokens": int(new.shape[0]),
                 "latency_ms": round((time.perf_counter() - t0) * 1000, 3)}
        return ModelCall(self.name, prompt, dict(p), tools, text, usage)


class OpenAIBackend:
    """An OpenAI-compatible chat endpoint.

    Args:
        base_url: endpoint root (``http://127.0.0.1:8000``; a trailing ``/v1`` is accepted).
        model: model name sent in the request.
        api_key: bearer token (read from the environment by the caller; never recorded).
        max_tokens: tokens generated per call.
        temperature: sampling temperature.
        timeout_s: request timeout.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, max_tokens: int = 128,
                 temperature: float = 0.0, timeout_s: float = 60.0) -> None:
        root = base_url.rstrip("/")
        self.url = (root if root.endswith("/v1") else root + "/v1") + "/chat/completions"
        self.name, self._key, self.timeout_s = model, api_key, timeout_s
        self.params = {"max_tokens": max_tokens, "temperature": temperature}

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
             seed: int | None = None) -> ModelCall:
        """One chat completion from the endpoint; native tool calls become ``<tool_call>`` text.

        Raises:
            BackendError: timeout, transport or HTTP error, or a response that is not JSON or has no
                ``choices[0].message``.
        """
        body: dict[str, Any] = {"model": self.name, "messages": messages, **self.params}
        if tools:
            body["tools"] = tools
        if seed is not None:
            body["seed"] = seed
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        t0 = time.perf_counter()
        data = self._send(req)
        try:
            msg = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise BackendError("runtime_error", f"{self.url}: response has no choices[0].message") from exc
        text = msg.get("content") or ""
        for tc in msg.get("tool_calls") or []:  # native tool calls → the text form the roles parse
            fn = tc.get("function") or {}
            args = fn.get("arguments")
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except json.JSONDecodeError:
                    pass
            text += tool_call_text(str(fn.get("name")), args) if isinstance(args, dict) else \
                f"<tool_call>{json.dumps({'name': fn.get('name'), 'arguments': args})}</tool_call>"
        u = data.get("usage") or {}
        usage = {"input_tokens": int(u.get("prompt_tokens") or 0), "output_tokens": int(u.get("completion_tokens") or 0),
                 "latency_ms": round((time.perf_counter() - t0) * 1000, 3)}
        return ModelCall(self.name, messages, dict(self.params), tools, text, usage)

    def _send(self, req: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace")
            raise BackendError("runtime_error", f"{self.url}: HTTP {exc.code}: {detail}") from exc
        except TimeoutError as exc:
            raise BackendError("timeout", f"{self.url}: no reply within {self.timeout_s:g} s") from exc
        except urllib.error.URLError as exc:
            kind = "timeout" if isinstance(exc.reason, (TimeoutError, socket.timeout)) else "runtime_error"
            raise BackendError(kind, f"{self.url}: {exc.reason}") from exc
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BackendError("runtime_error", f"{self.url}: response is not JSON") from exc
        if not isinstance(data, dict):
            raise BackendError("runtime_error", f"{self.url}: response is not a JSON object")
        return data
