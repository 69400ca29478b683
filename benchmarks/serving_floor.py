"""The floor `unified-ai serve` is measured against: a hello-world FastAPI app that parses the
same JSON body, served on the same uvicorn settings (`unified_ai.serving.server.server_config`:
the same HTTP protocol, timeouts and connection cap), in one process like the service.

    python -m benchmarks.serving_floor --port 8000
"""

import argparse
import json
from typing import Any


def create_app() -> Any:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.post("/v1/projects/{project}/predict")
    async def predict(project: str, request: Request) -> JSONResponse:
        data = json.loads(await request.body())
        return JSONResponse({"project": project, "rows": len(data["rows"])})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        return JSONResponse({"ready": True})

    return app


def main() -> None:
    import uvicorn

    from unified_ai.serving.server import server_config

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = server_config(create_app(), host="127.0.0.1", port=args.port, log_level="warning")
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
