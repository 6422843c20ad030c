"""The browse walk: every variable under ``Objects`` that a source's path rules select.

    found = await browse_variables(client, PathRules(["/Plant1/**"]), max_nodes_per_browse)
    # {"/Plant1/Line1/Press1/Speed": NodeId(...), ...}

Browsing follows hierarchical references (Organizes, HasComponent, ...) but not HasProperty:
properties such as EURange describe a variable, they are not data. The walk honours
MaxNodesPerBrowse, follows continuation points and skips ``/Server``.
"""

from __future__ import annotations

from collections.abc import Sequence

from asyncua import Client, ua

from connectors.opcua.paths import Path, PathRules, path_text

MAX_DEPTH = 32
"""A walk stops this deep: address spaces with reference cycles stay finite."""

_HAS_PROPERTY = ua.NodeId(ua.Int32(ua.ObjectIds.HasProperty))


async def browse_variables(client: Client, rules: PathRules, per_call: int) -> dict[str, ua.NodeId]:
    """Every variable under Objects that ``rules`` select: ``/Plant1/Line1/X`` -> its NodeId.

    Breadth first, one Browse call per ``per_call`` nodes of a level (MaxNodesPerBrowse), then
    BrowseNext while the server hands out continuation points. A node reached twice keeps its first path.
    """
    found: dict[str, ua.NodeId] = {}
    seen: set[ua.NodeId] = {ua.NodeId(ua.Int32(ua.ObjectIds.ObjectsFolder))}
    level: list[tuple[ua.NodeId, Path]] = [(ua.NodeId(ua.Int32(ua.ObjectIds.ObjectsFolder)), ())]
    depth = 0
    while level and depth < MAX_DEPTH:
        depth += 1
        below: list[tuple[ua.NodeId, Path]] = []
        for start in range(0, len(level), per_call):
            chunk = level[start:start + per_call]
            for (_, parent), refs in zip(chunk, await _browse(client, [nid for nid, _ in chunk]), strict=True):
                for ref in refs:
                    nid = ref.NodeId
                    if nid.NamespaceIndex == 0 and nid.Identifier == ua.ObjectIds.Server:
                        continue
                    if ref.ReferenceTypeId == _HAS_PROPERTY or nid in seen:
                        continue
                    seen.add(nid)
                    path = (*parent, ref.BrowseName.Name or "")
                    if ref.NodeClass == ua.NodeClass.Variable and rules.matches(path):
                        found[path_text(path)] = ua.NodeId(nid.Identifier, nid.NamespaceIndex, nid.NodeIdType)
                    if rules.worth_browsing(path):
                        below.append((nid, path))
        level = below
    return found


async def browse_references(client: Client, ids: Sequence[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
    """The hierarchical references (to objects and variables) of each of ``ids``, continuation points followed;
    one Browse call for all of them: the caller keeps to MaxNodesPerBrowse."""
    return await _browse(client, ids)


async def _browse(client: Client, ids: Sequence[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
    params = ua.BrowseParameters()
    params.View = ua.ViewDescription()
    params.RequestedMaxReferencesPerNode = 0
    params.NodesToBrowse = [
        ua.BrowseDescription(
            NodeId=nid,
            BrowseDirection=ua.BrowseDirection.Forward,
            ReferenceTypeId=ua.NodeId(ua.Int32(ua.ObjectIds.HierarchicalReferences)),
            IncludeSubtypes=True,
            NodeClassMask=ua.NodeClass.Object | ua.NodeClass.Variable,
            ResultMask=ua.BrowseResultMask.All,
        )
        for nid in ids
    ]
    results = await client.uaclient.browse(params)
    out: list[list[ua.ReferenceDescription]] = []
    for result in results:
        refs = list(result.References or [])
        point = result.ContinuationPoint
        while point:
            nxt = ua.BrowseNextParameters()
            nxt.ReleaseContinuationPoints = False
            nxt.ContinuationPoints = [point]
            more = (await client.uaclient.browse_next(nxt))[0]
            refs.extend(more.References or [])
            point = more.ContinuationPoint
        out.append(refs)
    return out
