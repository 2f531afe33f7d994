//! Routing: the fabric route of every remote DMA and every IPCQ channel of a
//! launch.
//!
//! Lowering numbers the remote endpoints of one instance in the order its
//! DMAs first reach them ([`Remotes`]); once every instance is lowered, the
//! launch's [`RouteTable`] gives each (PE, endpoint) pair one route, shared
//! by every op that takes it. Channels get the route from sender to receiver.

use super::pair::Channels;
use crate::passes::error::CompileError;
use crate::topology::{Endpoint, Route, Topology, TopologyError};
use crate::PeId;
use rustc_hash::FxHashMap;

/// The remote endpoints one instance's DMAs reach, by the index its ops hold.
#[derive(Clone, Debug, Default)]
pub(crate) struct Remotes {
    list: Vec<Endpoint>,
}

impl Remotes {
    /// The index of `ep`, added when new.
    pub(crate) fn index(&mut self, ep: Endpoint) -> u32 {
        let ix = match self.list.iter().position(|e| *e == ep) {
            Some(ix) => ix,
            None => {
                self.list.push(ep);
                self.list.len() - 1
            }
        };
        ix as u32
    }

    /// The endpoints, by index.
    pub(crate) fn endpoints(&self) -> &[Endpoint] {
        &self.list
    }
}

/// A remote DMA's way to its memory and back. Links carry bytes one way,
/// so a read's data does not take its request's links: on a mesh with XY
/// routing the way back is not even the way out reversed.
#[derive(Clone, Debug)]
pub(crate) struct RemoteRoute {
    /// PE -> memory: the bytes of a write, the request of a read.
    pub(crate) out: Route,
    /// Memory -> PE: the bytes of a read.
    pub(crate) back: Route,
}

/// The routes of a launch's remote DMAs: one per (PE, endpoint) pair, in the
/// order instances first take them.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    routes: Vec<RemoteRoute>,
    ends: Vec<Endpoint>,
    index: FxHashMap<(PeId, Endpoint), u32>,
}

impl RouteTable {
    /// The route index of each of `remote`, the endpoints of an instance on
    /// `pe`, asking the topology for the routes not yet in the table.
    pub(crate) fn bind(
        &mut self,
        topo: &Topology,
        pe: PeId,
        remote: &Remotes,
    ) -> Result<Vec<u32>, CompileError> {
        let mut out = Vec::with_capacity(remote.endpoints().len());
        for ep in remote.endpoints() {
            let ix = match self.index.get(&(pe, *ep)) {
                Some(ix) => *ix,
                None => {
                    let out = topo.route(Endpoint::Pe(pe), *ep).map_err(route_err)?;
                    let back = topo.route(*ep, Endpoint::Pe(pe)).map_err(route_err)?;
                    self.routes.push(RemoteRoute { out, back });
                    self.ends.push(*ep);
                    let ix = (self.routes.len() - 1) as u32;
                    self.index.insert((pe, *ep), ix);
                    ix
                }
            };
            out.push(ix);
        }
        Ok(out)
    }

    /// The routes, by index, and the memory each leads to.
    pub(crate) fn into_parts(self) -> (Vec<RemoteRoute>, Vec<Endpoint>) {
        (self.routes, self.ends)
    }
}

/// The route of each channel, from its sender's PE to its receiver's.
pub(crate) fn channel_routes(
    topo: &Topology,
    pes: &[PeId],
    channels: &Channels,
) -> Result<Vec<Route>, CompileError> {
    channels
        .list
        .iter()
        .map(|c| {
            topo.route(Endpoint::Pe(pes[c.src]), Endpoint::Pe(pes[c.dst]))
                .map_err(route_err)
        })
        .collect()
}

fn route_err(e: TopologyError) -> CompileError {
    CompileError::Route(e.into())
}
