//! Who is asking, decided once per request: the client's address (behind a trusted proxy, the
//! forwarded one), its keyed hash, the moderator session the request carries, and the ban that
//! applies. The upgrade, the pages and the server functions all start from a [`Visitor`].

use crate::{conn_log::now_ms, error::Refusal, moderation::Moderation, state::AppState, store::Ban};
use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, request::Parts},
};
use std::{convert::Infallible, net::IpAddr, net::SocketAddr, sync::Arc};

#[derive(Clone, Debug)]
pub struct Visitor {
    pub ip: IpAddr,
    /// The keyed hash of `ip`: what moderators see, and what reports are filed under.
    pub ip_hash: Arc<str>,
    /// The signed-in moderator session the request carries (a box, not a `String`: a socket
    /// keeps its visitor for its whole life).
    pub moderator: Option<Box<str>>,
    /// The ban on the address, if any. A moderator's session outranks it: a ban on a shared
    /// address (an office, a carrier's NAT) must not lock out the people who can lift it.
    /// (Boxed: rare, and a socket keeps its visitor for its whole life.)
    pub ban: Option<Box<Ban>>,
}

impl Visitor {
    /// The refusal a banned visitor gets, with the ban's reason and end.
    pub fn banned(&self) -> Option<Refusal> {
        self.ban.as_ref().map(|ban| Refusal::banned(app::text::ban_sentence(&ban.reason, ban.expires_at)))
    }

    pub fn is_moderator(&self) -> bool {
        self.moderator.is_some()
    }
}

impl Moderation {
    /// Works out who sent a request that reached us from `peer` with `headers`.
    pub fn visitor(&self, peer: IpAddr, headers: &HeaderMap) -> Visitor {
        let ip = self.proxies.client_ip(peer, headers);
        let ip_hash: Arc<str> = self.hasher.hash(ip).into();
        let moderator = self.auth.session(headers);
        let ban = if moderator.is_some() { None } else { self.bans.find(ip, &ip_hash, now_ms()).map(Box::new) };
        Visitor { ip, ip_hash, moderator: moderator.map(String::into_boxed_str), ban }
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Every connection is served with its peer address (`serve`); a request without one
        // (built by hand, in a test) is taken as local.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), |info| info.0.ip());
        Ok(state.moderation.visitor(peer, &parts.headers))
    }
}
