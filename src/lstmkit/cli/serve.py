"""``lstmkit serve CHECKPOINT``: the stateful streaming inference server (argparse only).

CHECKPOINT is a model.pt (or the --out folder holding it) of a job (forecast, lm) or a bare
layer saved with ``lstmkit.models.checkpoints.save_model``. See ``lstmkit.serve.app`` for routes.
"""

from __future__ import annotations

from ..functional.lstm import STEP_WEIGHTS


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a checkpoint over HTTP: sessions, batching, SSE",
                       description="Serve a checkpoint: stateless /v1/predict, stateful sessions "
                       "(/v1/sessions) with dynamic batching, /v1/generate for language models, "
                       "/health, /metrics, /docs. API key: set $LSTMKIT_API_KEY (or --api-key-env).")
    p.add_argument("checkpoint", help="model.pt, or a job's --out folder")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--window-ms", type=float, default=2.0, help="batching window (default 2)")
    p.add_argument("--max-batch", type=int, default=64, help="most steps per batch; 1 = batching off")
    p.add_argument("--max-sessions", type=int, default=10_000, help="LRU eviction beyond this")
    p.add_argument("--ttl", type=float, default=3600.0,
                   help="idle seconds before a session expires; 0 = never")
    p.add_argument("--db", default=None, help="SQLite file: persist sessions, resume them on restart")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20)
    p.add_argument("--max-steps", type=int, default=1024, help="steps per request / prompt tokens")
    p.add_argument("--max-new-tokens", type=int, default=1024)
    p.add_argument("--api-key-env", default="LSTMKIT_API_KEY",
                   help="environment variable holding the bearer API key (unset: no auth)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the model thread")
    p.add_argument("--step-weights", choices=STEP_WEIGHTS, default="full",
                   help="weight precision of the streaming step: full (default), bfloat16 (half "
                   "the bytes) or int8 (a quarter; per-row scales, dynamic 8-bit activations)")
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..serve import ServeConfig, serve

    if not 0 < args.port < 65536:
        raise ValueError(f"--port: expected 1..65535, got {args.port}")
    cfg = ServeConfig(window_ms=args.window_ms, max_batch=args.max_batch, max_sessions=args.max_sessions,
                      ttl=args.ttl or None, db=args.db, max_body_bytes=args.max_body_bytes,
                      max_steps=args.max_steps, max_new_tokens=args.max_new_tokens,
                      api_key_env=args.api_key_env, threads=args.threads)
    print(f"lstmkit serve: http://{args.host}:{args.port} (docs at /docs; batching "
          f"{'off' if args.max_batch == 1 else f'window {args.window_ms:g} ms, max {args.max_batch}'}"
          f"{', sessions persisted to ' + args.db if args.db else ''}"
          f"{'' if args.step_weights == 'full' else ', ' + args.step_weights + ' step weights'})",
          flush=True)
    serve(args.checkpoint, args.host, args.port, cfg, log_level=args.log_level,
          step_weights=args.step_weights)
    return 0
