"""A NAT lab for the end-to-end tests (issue 12): the host is the "internet" (the control plane
listens there), bridges hang off it on public /30s like netlab's namespaces, and each site is a
node namespace on a private LAN behind its own router namespace that NATs with nftables:

    port_restricted   `masquerade`: one mapping per inside socket whatever the destination
                      (endpoint-independent mapping), filtered by address and port
    symmetric         `masquerade random`: a new mapping per destination

Like real routers, a router drops unsolicited inbound packets (only established/related pass from
the WAN side) — without that drop, the first unsolicited packet leaves an UNREPLIED conntrack entry
that makes masquerade pick another port and hole punching never succeeds (../shared/design.md).
The LANs are not routed anywhere else, so Nodes in different sites cannot reach each other's
private addresses. Everything is named with the `pxe2e` prefix (tests/e2e/cleanup.sh removes it)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.netlab import (
    FORWARD_SAVE,
    IP_FORWARD,
    PREFIX,
    RUN_DIR,
    Namespace,
    free_blocks,
    missing_prerequisites,
    run,
)

NAT_KINDS = ("port_restricted", "symmetric")
# The lab's "internet": everything a site may reach (the host's and the bridges' addresses). The
# routers drop the rest, so no packet of a site leaves through the host's own default route.
INTERNET = "198.51.100.0/24"
NAT_TOOLS = ("nft", "conntrack")


def missing_nat_prerequisites() -> list[str]:
    return missing_prerequisites() + [f"`{t}` on PATH" for t in NAT_TOOLS if shutil.which(t) is None]


@dataclass
class Site:
    """A Node namespace behind a router namespace. `index` picks the LAN 10.<index>.0.0/24."""

    name: str  # short label, e.g. "a": node netns pxe2e-a, router netns pxe2e-ra
    nat: str
    index: int
    block: int  # the router's public /30 in 198.51.100.0/24 (host end block+1, router block+2)
    spares: list[int] = field(default_factory=list)  # /30s whose .2 the router may move to
    public: str = ""

    def __post_init__(self) -> None:
        self.public = self.public or f"198.51.100.{self.block + 2}"

    @property
    def node(self) -> Namespace:
        # The node's namespace; Namespace.exec/ping/spawn work on it. Its `host_address` is not on
        # its own link: the control plane is reached at the router's host end (see control_plane_host).
        return Namespace(self.name, self.block)

    @property
    def router_netns(self) -> str:
        return f"{PREFIX}-r{self.name}"

    @property
    def wan(self) -> str:  # inside the router
        return f"{PREFIX}-w{self.name}"

    @property
    def host_veth(self) -> str:
        return f"{PREFIX}-h{self.name}"

    @property
    def lan(self) -> str:  # router's LAN side
        return f"{PREFIX}-l{self.name}"

    @property
    def node_veth(self) -> str:
        return f"{PREFIX}-n{self.name}"

    @property
    def control_plane_host(self) -> str:
        """The host address a Node of this site dials for the control plane (through its NAT)."""
        return f"198.51.100.{self.block + 1}"

    @property
    def lan_router(self) -> str:
        return f"10.{self.index}.0.1"

    @property
    def lan_node(self) -> str:
        return f"10.{self.index}.0.2"

    def router(self, *args: str, check: bool = True, timeout: float = 30):
        return run("ip", "netns", "exec", self.router_netns, *args, check=check, timeout=timeout)

    # -- NAT events the acceptance tests provoke ------------------------------------------------
    def flush_conntrack(self) -> None:
        """Rebinding: the router forgets every mapping (as after a reboot or a timeout)."""
        self.router("conntrack", "-F", check=False)

    def change_public_address(self) -> str:
        """Moves the router to a new public address (an ISP handing out a new lease): the old
        mappings die with the old address; returns the new one."""
        if not self.spares:
            raise RuntimeError(f"site {self.name} has no spare public address left")
        block = self.spares.pop(0)
        new = f"198.51.100.{block + 2}"
        run("ip", "route", "add", f"{new}/32", "dev", self.host_veth)
        self.router("ip", "addr", "add", f"{new}/32", "dev", self.wan)
        _load(self, self.router_netns, _nat_rules(self, snat_to=new))
        self.router("ip", "addr", "del", f"{self.public}/30", "dev", self.wan, check=False)
        # The default route went with the /30: back via the host end, sourced from the new address.
        self.router("ip", "route", "replace", self.control_plane_host, "dev", self.wan, "src", new)
        self.router("ip", "route", "replace", "default", "via", self.control_plane_host, "dev", self.wan,
                    "src", new)
        run("ip", "route", "del", f"{self.public}/32", "dev", self.host_veth, check=False)
        self.flush_conntrack()
        self.public = new
        return new


def _nat_rules(site: Site, snat_to: str | None = None) -> str:
    random = " random" if site.nat == "symmetric" else ""
    translate = f"snat to {snat_to}{random}" if snat_to else f"masquerade{random}"
    return f"""
table ip pxe2e_nat
delete table ip pxe2e_nat
table ip pxe2e_nat {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{site.wan}" {translate}
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{site.wan}" ct state established,related accept
        iifname "{site.wan}" drop
        oifname "{site.wan}" ip daddr != {INTERNET} drop
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "{site.wan}" ct state established,related accept
        iifname "{site.wan}" drop
    }}
}}
"""


def _load(site: Site, netns: str, rules: str) -> None:
    path = RUN_DIR / f"nft-{netns}.conf"
    path.write_text(rules)
    run("ip", "netns", "exec", netns, "nft", "-f", str(path))


class NatLab:
    """`sites`: label → NAT kind; `bridges`: labels of namespaces on the open network."""

    def __init__(self, sites: dict[str, str], bridges: list[str] = (), spare_addresses: int = 1) -> None:
        assert all(kind in NAT_KINDS for kind in sites.values())
        self.site_kinds = sites
        self.bridge_names = list(bridges)
        self.spare_addresses = spare_addresses
        self.sites: dict[str, Site] = {}
        self.bridges: dict[str, Namespace] = {}
        self._saved_forward: str | None = None

    def __getitem__(self, name: str) -> Site | Namespace:
        return self.sites.get(name) or self.bridges[name]

    def up(self) -> NatLab:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        for name in self.site_kinds:  # leftovers of a crashed run, before picking free blocks
            self._remove_site_names(name)
        for name in self.bridge_names:
            self._remove_bridge(Namespace(name, 0))
        per_site = 1 + self.spare_addresses
        blocks = free_blocks(len(self.site_kinds) * per_site + len(self.bridge_names))
        self._saved_forward = IP_FORWARD.read_text().strip()
        if not FORWARD_SAVE.exists():
            FORWARD_SAVE.write_text(self._saved_forward)
        IP_FORWARD.write_text("1")
        for i, (name, kind) in enumerate(self.site_kinds.items()):
            mine = blocks[i * per_site:(i + 1) * per_site]
            site = Site(name, kind, index=i + 1, block=mine[0], spares=mine[1:])
            self.sites[name] = site
            self._build_site(site)
        for j, name in enumerate(self.bridge_names):
            ns = Namespace(name, blocks[len(self.site_kinds) * per_site + j])
            self.bridges[name] = ns
            self._build_bridge(ns)
        return self

    @staticmethod
    def _build_bridge(ns: Namespace) -> None:
        run("ip", "netns", "add", ns.netns)
        run("ip", "link", "add", ns.host_veth, "type", "veth", "peer", "name", ns.ns_veth)
        run("ip", "link", "set", ns.ns_veth, "netns", ns.netns)
        run("ip", "addr", "add", f"{ns.host_address}/30", "dev", ns.host_veth)
        run("ip", "link", "set", ns.host_veth, "up")
        ns.exec("ip", "addr", "add", f"{ns.address}/30", "dev", ns.ns_veth)
        ns.exec("ip", "link", "set", ns.ns_veth, "up")
        ns.exec("ip", "link", "set", "lo", "up")
        ns.exec("ip", "route", "add", "default", "via", ns.host_address)

    @staticmethod
    def _build_site(site: Site) -> None:
        node = site.node
        run("ip", "netns", "add", site.router_netns)
        run("ip", "netns", "add", node.netns)
        # WAN: host ↔ router
        run("ip", "link", "add", site.host_veth, "type", "veth", "peer", "name", site.wan)
        run("ip", "link", "set", site.wan, "netns", site.router_netns)
        run("ip", "addr", "add", f"{site.control_plane_host}/30", "dev", site.host_veth)
        run("ip", "link", "set", site.host_veth, "up")
        site.router("ip", "addr", "add", f"{site.public}/30", "dev", site.wan)
        site.router("ip", "link", "set", site.wan, "up")
        site.router("ip", "link", "set", "lo", "up")
        site.router("ip", "route", "add", "default", "via", site.control_plane_host)
        site.router("sysctl", "-qw", "net.ipv4.ip_forward=1")
        # LAN: router ↔ node
        run("ip", "link", "add", site.lan, "type", "veth", "peer", "name", site.node_veth)
        run("ip", "link", "set", site.lan, "netns", site.router_netns)
        run("ip", "link", "set", site.node_veth, "netns", node.netns)
        site.router("ip", "addr", "add", f"{site.lan_router}/24", "dev", site.lan)
        site.router("ip", "link", "set", site.lan, "up")
        node.exec("ip", "addr", "add", f"{site.lan_node}/24", "dev", site.node_veth)
        node.exec("ip", "link", "set", site.node_veth, "up")
        node.exec("ip", "link", "set", "lo", "up")
        node.exec("ip", "route", "add", "default", "via", site.lan_router)
        _load(site, site.router_netns, _nat_rules(site))

    def _remove_site_names(self, name: str) -> None:
        for netns in (f"{PREFIX}-{name}", f"{PREFIX}-r{name}"):
            run("ip", "netns", "del", netns, check=False)
        run("ip", "link", "del", f"{PREFIX}-h{name}", check=False)

    @staticmethod
    def _remove_bridge(ns: Namespace) -> None:
        run("ip", "netns", "del", ns.netns, check=False)
        run("ip", "link", "del", ns.host_veth, check=False)

    def down(self) -> None:
        for name in self.sites:
            self._remove_site_names(name)
        for ns in self.bridges.values():
            self._remove_bridge(ns)
        if self._saved_forward is not None:
            IP_FORWARD.write_text(self._saved_forward)
            FORWARD_SAVE.unlink(missing_ok=True)
        for path in RUN_DIR.glob(f"nft-{PREFIX}-*.conf"):
            path.unlink(missing_ok=True)
        for sock in Path("/var/run/wireguard").glob(f"{PREFIX}-*.sock"):
            sock.unlink(missing_ok=True)

    def __enter__(self) -> NatLab:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc: object) -> None:
        self.down()
