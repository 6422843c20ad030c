"""What ``sitewise-edge opcua cert`` and ``sitewise-edge opcua browse`` do (the parser is in sitewise_edge/cli.py).

    lines = certificate_report(source, clock)                 # the client certificate (made if missing), trust list
    rows = await browse_tree(source, "/Plant1/Line1", depth=2)   # the address space under a browse path

Both take an :class:`~connectors.opcua.config.OpcUaSource` (from the configuration file, or built from the
command's options), so the command connects, and finds its certificate, exactly as the gateway does.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from asyncua import ua
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from connectors.opcua import pki
from connectors.opcua.browse import browse_references
from connectors.opcua.config import OpcUaSource
from connectors.opcua.connector import OpcUaPollingConnector
from connectors.opcua.security import PkiError, load_certificate, own_certificate, trust_folder, trust_kind
from sitewise_edge.clock import Clock

VALUE_WIDTH = 40


class BrowseError(ValueError):
    """A browse path that is not on the server (the message names the last level found and what is there)."""


@dataclass(frozen=True)
class BrowsedNode:
    path: str
    node_id: str
    node_class: str
    data_type: str = ""
    value: str = ""


def certificate_report(source: OpcUaSource, clock: Clock) -> list[str]:
    """The gateway's client certificate for ``source`` (generated when it has none configured and none was
    made yet), then the trust list with its trusted and rejected certificates. Raises PkiError."""
    own = own_certificate(source, clock)
    cert = own.certificate
    made = "generated now" if own.generated else "configured" if source.certificate else "generated earlier"
    lines = [
        f"client certificate  {own.cert_path} ({made})",
        f"private key         {own.key_path}",
        f"subject             {cert.subject.rfc4514_string()}",
        f"application URI     {own.application_uri}",
        f"valid               {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d} (UTC)",
        f"SHA-256             {pki.fingerprint(cert)}",
        f"SHA-1 (thumbprint)  {_sha1(cert)}",
        "Trust this certificate on the OPC UA server (most servers hold it under 'rejected' after the first "
        "attempt: move it to 'trusted').",
    ]
    kind = trust_kind(source)
    if kind == "trust_list":
        folder = trust_folder(source)
        lines.append(f"server trust        trust list {folder}")
        for sub in (pki.TRUSTED, pki.REJECTED):
            entries = _listing(folder / sub)
            lines.append(f"  {sub}/ ({len(entries)})" + ("" if entries else ": empty"))
            lines.extend(f"    {e}" for e in entries)
    elif kind == "sha256":
        lines.append(f"server trust        pinned SHA-256 {source.server_certificate_sha256}")
    elif kind == "certificate":
        lines.append(f"server trust        pinned certificate {source.server_certificate}")
    else:
        lines.append("server trust        any server (trust_any_server: true)")
    return lines


def trust_certificate(source: OpcUaSource, path: Path) -> Path:
    """Copy a server certificate into the trust list's trusted/ (and out of rejected/ when it came from
    there): where it now is. Raises PkiError."""
    load_certificate(path, "certificate to trust")  # refuse a file that is not one
    folder = trust_folder(source)
    target = folder / pki.TRUSTED / path.name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.resolve() != target.resolve():
            shutil.copyfile(path, target)
        if path.resolve().parent == (folder / pki.REJECTED).resolve():
            path.unlink()
    except OSError as exc:
        raise PkiError(f"cannot copy {str(path)!r} into {str(target.parent)!r}: {exc.strerror or exc}",
                       field="trust_list", path=folder) from exc
    return target


def _listing(folder: Path) -> list[str]:
    out = []
    for cert, path in _certificates(folder):
        out.append(f"{path.name}: {pki.common_name(cert)}, until {cert.not_valid_after_utc:%Y-%m-%d}, "
                   f"SHA-256 {pki.fingerprint(cert)}")
    return out


def _certificates(folder: Path) -> list[tuple[x509.Certificate, Path]]:
    found = []
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            try:
                found.append((load_certificate(path, "certificate"), path))
            except PkiError:
                continue
    return found


def _sha1(cert: x509.Certificate) -> str:
    return "".join(f"{b:02x}" for b in cert.fingerprint(hashes.SHA1()))


async def browse_tree(source: OpcUaSource, path: str = "/", depth: int = 1) -> list[BrowsedNode]:
    """Objects and variables under ``path`` (browse names from Objects), ``depth`` levels down, with each
    variable's data type and current value. Raises ConnectorError (cannot connect) or BrowseError."""
    if not path.startswith("/"):
        raise BrowseError(f"browse path {path!r} must start with / (the Objects folder), e.g. /Plant1/Line1")
    parts = [p for p in path.split("/") if p]
    connector = OpcUaPollingConnector(source)
    async with connector.session() as (client, per_browse, per_read):
        start = ua.NodeId(ua.Int32(ua.ObjectIds.ObjectsFolder))
        walked: list[str] = []
        for part in parts:
            (refs,) = await browse_references(client, [start])
            match = [r for r in refs if (r.BrowseName.Name or "") == part]
            if not match:
                here = "/" + "/".join(walked)
                names = sorted({r.BrowseName.Name or "" for r in refs})
                raise BrowseError(f"browse path {path!r} not found: {here} has no {part!r}"
                                  + (f" (it has {', '.join(names[:20])}{' ...' if len(names) > 20 else ''})"
                                     if names else " (it has no children)"))
            start = match[0].NodeId
            walked.append(part)
        out: list[BrowsedNode] = []
        order: list[tuple[int, ...]] = []  # each node's position in the tree: the output is depth first
        variables: list[tuple[int, ua.NodeId]] = []
        level: list[tuple[ua.NodeId, tuple[str, ...], tuple[int, ...]]] = [(start, tuple(walked), ())]
        seen = {start}
        for _ in range(depth):
            below = []
            for i in range(0, len(level), per_browse):
                nodes = level[i:i + per_browse]
                for (_, parent, key), refs in zip(nodes, await browse_references(client, [n[0] for n in nodes]),
                                                  strict=True):
                    for k, ref in enumerate(refs):
                        nid = ref.NodeId
                        if nid in seen or (nid.NamespaceIndex == 0 and nid.Identifier == ua.ObjectIds.Server):
                            continue
                        seen.add(nid)
                        p = (*parent, ref.BrowseName.Name or "")
                        node = BrowsedNode("/" + "/".join(p), nid.to_string(), ua.NodeClass(ref.NodeClass).name)
                        if ref.NodeClass == ua.NodeClass.Variable:
                            variables.append((len(out), nid))
                        out.append(node)
                        order.append((*key, k))
                        below.append((nid, p, (*key, k)))
            level = below
        for i in range(0, len(variables), per_read):
            chunk = variables[i:i + per_read]
            params = ua.ReadParameters()
            params.TimestampsToReturn = ua.TimestampsToReturn.Neither
            params.NodesToRead = [ua.ReadValueId(NodeId=nid, AttributeId=attr) for _, nid in chunk
                                  for attr in (ua.AttributeIds.DataType, ua.AttributeIds.Value)]
            results = await client.uaclient.read(params)
            for j, (index, _) in enumerate(chunk):
                dtype, value = results[2 * j], results[2 * j + 1]
                node = out[index]
                out[index] = BrowsedNode(node.path, node.node_id, node.node_class, _type_name(dtype), _value(value))
        return [node for _, node in sorted(zip(order, out, strict=True), key=lambda pair: pair[0])]


def _type_name(dv: ua.DataValue) -> str:
    nid = dv.Value.Value if dv.Value is not None else None
    if not isinstance(nid, ua.NodeId):
        return ""
    if nid.NamespaceIndex == 0 and isinstance(nid.Identifier, int):
        return ua.ObjectIdNames.get(nid.Identifier, nid.to_string())
    return nid.to_string()


def _value(dv: ua.DataValue) -> str:
    if dv.StatusCode is not None and not dv.StatusCode.is_good():
        return f"({dv.StatusCode.name})"
    raw = dv.Value.Value if dv.Value is not None else None
    text = str(raw)
    return text if len(text) <= VALUE_WIDTH else text[:VALUE_WIDTH - 3] + "..."


def render(nodes: list[BrowsedNode]) -> list[str]:
    """An aligned table: browse path, NodeId, node class, data type, value."""
    header = BrowsedNode("BROWSE PATH", "NODE ID", "CLASS", "TYPE", "VALUE")
    rows = [header, *nodes]
    widths = [max(len(getattr(r, f)) for r in rows) for f in ("path", "node_id", "node_class", "data_type")]
    return [f"{r.path:<{widths[0]}}  {r.node_id:<{widths[1]}}  {r.node_class:<{widths[2]}}  "
            f"{r.data_type:<{widths[3]}}  {r.value}".rstrip() for r in rows]
