# One image for the gateway, the local SiteWise endpoint and both simulators.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sitewise_edge sitewise_edge
COPY connectors connectors
COPY asset_models asset_models
COPY storage storage
COPY api api
COPY examples examples
RUN pip install --no-cache-dir -e . && useradd --create-home edge && mkdir -p /data && chown edge /data
USER edge
ENTRYPOINT ["sitewise-edge"]
CMD ["run", "-c", "examples/gateway.yaml"]
