//! Moderation: who is banned, who connected (the log), flood and content rules, reports, and what
//! moderators do — every action of theirs written to the audit log.

pub mod auth;
pub mod bans;
pub mod filters;
pub mod flood;
pub mod registry;

use crate::{
    cluster::Decision,
    conn_log::{ConnLog, now_ms},
    error::Refusal,
    frame::Frame,
    hub::Hub,
    outbox::{CloseReason, ConnHandle, Offer},
    peer::{IpHasher, TrustedProxies, ban_block},
    store::{self, AuditEntry, Ban, Report, Store},
};
use app::protocol::{
    self, AuditView, BanView, ConnectionView, ErrorCode, ModAction, ModMessage, ModSnapshot, ReportView, ServerMsg,
    close,
};
use auth::Auth;
use bans::{Bans, covers};
use registry::Registry;
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

/// Messages a report keeps of the room around it.
const REPORT_SNAPSHOT: usize = 20;
/// Rows the console shows of the audit log and the report queue.
const CONSOLE_ROWS: u32 = 100;

pub struct Moderation {
    pub store: Arc<dyn Store>,
    pub hasher: IpHasher,
    pub proxies: TrustedProxies,
    pub bans: Bans,
    pub log: ConnLog,
    pub registry: Registry,
    pub auth: Auth,
    pub ban_duration: Duration,
    pub ipv6_prefix: u8,
    pub consoles: Consoles,
    /// In cluster mode, the other nodes: bans and moderator sessions reach them through it.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The Discord bridge, when there is one (set once it exists; it holds this, hence weak).
    pub discord: std::sync::OnceLock<std::sync::Weak<crate::bridge::Bridge>>,
}

/// Console connections: their moderator session, and the last snapshot each was sent.
#[derive(Default)]
pub struct Consoles(Mutex<HashMap<u64, (ConnHandle, String, Frame)>>);

/// Client addresses are canonical (IPv4-mapped IPv6 is IPv4), so a block written in the mapped
/// form (`::ffff:192.0.2.0/120`) is the IPv4 block it stands for.
fn canonical_net(net: ipnet::IpNet) -> ipnet::IpNet {
    match net {
        ipnet::IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, |n| n.trunc().into()),
            None => net,
        },
        other => other,
    }
}

impl Moderation {
    /// Writes one line of the audit log (failures are logged: the action itself stands).
    pub async fn audit(&self, action: &str, target: &str, reason: &str, detail: String) {
        let entry = AuditEntry {
            at: now_ms(),
            action: action.to_owned(),
            target: target.to_owned(),
            reason: reason.to_owned(),
            detail,
        };
        if let Err(error) = self.store.audit(&entry).await {
            tracing::error!(%error, action, "cannot write the audit log");
        }
    }

    /// Bans `target` and closes every open connection it covers at once.
    pub async fn ban(
        &self,
        target: store::BanTarget,
        reason: &str,
        duration: Option<Duration>,
    ) -> Result<Ban, Refusal> {
        let at = now_ms();
        let expires_at = duration.map(|d| at.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
        let ban = self.store.add_ban(&target, reason, at, expires_at).await?;
        let closed = self.enforce_ban(ban.clone());
        if let Some(cluster) = &self.cluster {
            cluster.announce(crate::cluster::Control::BanAdded { ban: (&ban).into() }).await;
        }
        let shown = self.ban_view(&ban).target;
        self.audit("ban", &shown, reason, format!("{closed} connection(s) closed; until {expires_at:?}")).await;
        Ok(ban)
    }

    /// Holds `ban` on this node from now on and closes every open connection it covers; how
    /// many. A ban this node already holds closes nothing again.
    pub fn enforce_ban(&self, ban: Ban) -> usize {
        let target = ban.target.clone();
        let sentence = app::text::ban_sentence(&ban.reason, ban.expires_at);
        if !self.bans.insert(ban) {
            return 0;
        }
        self.close_banned(&target, &sentence)
    }

    /// Reads the bans in force from the store (in a cluster, the truth every node shares) and
    /// holds them, closing connections that bans this node had not heard of cover.
    pub async fn reload_bans(&self) -> Result<(), store::StoreError> {
        let bans = self.store.active_bans(now_ms()).await?;
        for ban in self.bans.replace(bans) {
            self.close_banned(&ban.target, &app::text::ban_sentence(&ban.reason, ban.expires_at));
        }
        Ok(())
    }

    /// Closes every open connection `target` covers with the ban's sentence; how many.
    fn close_banned(&self, target: &store::BanTarget, sentence: &str) -> usize {
        self.registry.close_where(|ip, hash| covers(target, ip, hash), &CloseReason::new(close::BANNED, sentence))
    }

    fn ban_view(&self, ban: &Ban) -> BanView {
        let target = match &ban.target {
            store::BanTarget::Ip(ip) => format!("address {}", self.hasher.hash(*ip)),
            store::BanTarget::Net(net) => format!("block {}/{}", self.hasher.hash(net.network()), net.prefix_len()),
            store::BanTarget::Hash(hash) => format!("hash {hash}"),
        };
        BanView {
            id: ban.id,
            target,
            reason: ban.reason.clone(),
            created_at: ban.created_at,
            expires_at: ban.expires_at,
        }
    }

    /// Does what a moderator asked; the sentence confirming it, or why it could not be done.
    pub async fn command(&self, hub: &Hub, command: ModAction) -> Result<String, Refusal> {
        match command {
            ModAction::Kick { room, member, reason } => {
                let kicked =
                    hub.room(&room).and_then(|r| r.kick(member, &reason)).ok_or_else(|| Refusal::no_such("member"))?;
                // The holder's node hears the decision first (and closes the connection as
                // kicked), then Redis gives the place back, so the holder cannot post on.
                share(hub, &room, Decision::Kick { member, reason: reason.clone() }).await;
                if let Some(rooms) = hub.cluster() {
                    rooms.kick(&room, member).await;
                }
                self.audit("kick", &format!("{} in {room}", kicked.nickname), &reason, String::new()).await;
                Ok(format!("{} was removed from the room.", kicked.nickname))
            }
            ModAction::Ban { target, reason, duration_secs } => {
                let target = self.ban_target(hub, target).await?;
                let duration = match duration_secs {
                    None => Some(self.ban_duration),
                    Some(0) => None,
                    Some(secs) => Some(Duration::from_secs(secs)),
                };
                let ban = self.ban(target, &reason, duration).await?;
                Ok(match ban.expires_at {
                    Some(until) => format!("Banned until {}.", app::text::utc_date_time(until)),
                    None => "Banned for good.".to_owned(),
                })
            }
            ModAction::Unban { id } => {
                let lifted = self.store.lift_ban(id, now_ms()).await?;
                if !(self.bans.remove(id) || lifted) {
                    return Err(Refusal::no_such("ban"));
                }
                if let Some(cluster) = &self.cluster {
                    cluster.announce(crate::cluster::Control::BanLifted { id }).await;
                }
                self.audit("unban", &format!("ban {id}"), "", String::new()).await;
                Ok("The ban is lifted.".to_owned())
            }
            ModAction::ShadowMute { room, member, muted } => {
                let who = hub
                    .room(&room)
                    .and_then(|r| r.shadow_mute(member, muted))
                    .ok_or_else(|| Refusal::no_such("member"))?;
                share(hub, &room, Decision::ShadowMute { member, muted }).await;
                let action = if muted { "shadow_mute" } else { "unmute" };
                self.audit(action, &format!("{} in {room}", who.nickname), "", String::new()).await;
                Ok(if muted {
                    format!("{} is shadow-muted.", who.nickname)
                } else {
                    format!("{} can be heard again.", who.nickname)
                })
            }
            ModAction::DeleteMessage { room, seq, reason } => {
                let author = match hub.room(&room).and_then(|r| r.delete_message(seq)) {
                    Some(author) => author,
                    // A node that does not listen to the room has not seen its latest
                    // messages; Redis has (and `share` deletes it there).
                    None => match hub.cluster() {
                        Some(rooms) => rooms.author_of(&room, seq).await.ok_or_else(|| Refusal::no_such("message"))?,
                        None => return Err(Refusal::no_such("message")),
                    },
                };
                share(hub, &room, Decision::Delete { seq }).await;
                self.audit(
                    "delete_message",
                    &format!("#{seq} by {} in {room}", author.nickname),
                    &reason,
                    String::new(),
                )
                .await;
                Ok("The message is deleted.".to_owned())
            }
            ModAction::LinkDiscord { .. }
            | ModAction::UnlinkDiscord { .. }
            | ModAction::MuteDiscordAuthor { .. }
            | ModAction::UnmuteDiscordAuthor { .. } => {
                // The bridge takes these (`site`); without one there is nothing to link.
                Err(Refusal::new(app::protocol::ErrorCode::Unavailable, "This server runs no Discord bridge."))
            }
            ModAction::LockRoom { room, locked } => {
                let target = hub.room(&room).ok_or_else(|| Refusal::no_such("room"))?;
                target.update_settings(|s| s.locked = locked);
                share(hub, &room, Decision::Lock { locked }).await;
                self.save_settings(&target).await?;
                self.audit(if locked { "lock" } else { "unlock" }, &room, "", String::new()).await;
                Ok(if locked { "The room is locked." } else { "The room is open again." }.to_owned())
            }
            ModAction::SlowMode { room, seconds } => {
                let seconds = seconds.min(crate::hub::MAX_SLOW_MODE.as_secs() as u32);
                let target = hub.room(&room).ok_or_else(|| Refusal::no_such("room"))?;
                target.update_settings(|s| s.slow_mode_secs = seconds);
                share(hub, &room, Decision::SlowMode { seconds }).await;
                self.save_settings(&target).await?;
                self.audit("slow_mode", &room, "", format!("{seconds} s")).await;
                Ok(if seconds == 0 {
                    "Slow mode is off.".to_owned()
                } else {
                    format!("Slow mode: one message every {seconds} s.")
                })
            }
            ModAction::CloseRoom { room, reason } => {
                let closed = match hub.cluster() {
                    // Removed from Redis, once; every node (this one too) then lets its members go.
                    Some(rooms) => match hub.room(&room) {
                        Some(target) if room != app::protocol::LOBBY_SLUG => {
                            let removed = rooms
                                .remove(&room, target.name_key(), &reason, true)
                                .await
                                .map_err(|_| Refusal::unavailable())?;
                            if removed {
                                hub.close_room(&room, &reason);
                            }
                            removed
                        }
                        _ => false,
                    },
                    None => hub.close_room(&room, &reason),
                };
                if !closed {
                    return Err(Refusal::no_such("room"));
                }
                self.store.delete_room(&room).await?;
                self.audit("close_room", &room, &reason, String::new()).await;
                Ok("The room is closed.".to_owned())
            }
            ModAction::ResolveReport { id } => {
                if !self.store.resolve_report(id, now_ms()).await? {
                    return Err(Refusal::no_such("open report"));
                }
                self.audit("resolve_report", &format!("report {id}"), "", String::new()).await;
                Ok("The report is resolved.".to_owned())
            }
        }
    }

    async fn save_settings(&self, room: &crate::hub::Room) -> Result<(), Refusal> {
        Ok(self.store.save_room(&room.record()).await?)
    }

    /// What a ban covers: an IPv4 address, or an IPv6 address's block (its owner can pick any
    /// address in it); a hash becomes the address behind it where the log or a member knows it.
    async fn ban_target(&self, hub: &Hub, target: protocol::BanTarget) -> Result<store::BanTarget, Refusal> {
        Ok(match target {
            protocol::BanTarget::Member { room, member } => {
                let (ip, _) =
                    hub.room(&room).and_then(|r| r.member_address(member)).ok_or_else(|| Refusal::no_such("member"))?;
                self.address_ban(ip)
            }
            protocol::BanTarget::Hash { hash } => {
                let hash = hash.trim().to_ascii_lowercase();
                if hash.len() != 24 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Refusal::bad_request("An address hash is 24 hex digits."));
                }
                let known = match self.registry.address_of(&hash) {
                    Some(ip) => Some(ip),
                    None => self
                        .store
                        .search_connections(&hash, 1)
                        .await?
                        .first()
                        .and_then(|row| (row.ip_hash == hash).then(|| row.ip.parse::<IpAddr>().ok()).flatten()),
                };
                match known {
                    Some(ip) => self.address_ban(ip),
                    None => store::BanTarget::Hash(hash),
                }
            }
            protocol::BanTarget::Address { address } => {
                let address = address.trim();
                if let Ok(ip) = address.parse::<IpAddr>() {
                    self.address_ban(ip)
                } else if let Ok(net) = address.parse::<ipnet::IpNet>() {
                    store::BanTarget::Net(canonical_net(net.trunc()))
                } else {
                    return Err(Refusal::bad_request("That is neither an address nor a block (CIDR)."));
                }
            }
        })
    }

    fn address_ban(&self, ip: IpAddr) -> store::BanTarget {
        let ip = crate::peer::canonical(ip);
        match ban_block(ip, self.ipv6_prefix) {
            net if net.prefix_len() == net.max_prefix_len() => store::BanTarget::Ip(ip),
            net => store::BanTarget::Net(net),
        }
    }

    /// Connection-log search for the console; addresses only when `reveal` (audited).
    pub async fn search(&self, text: &str, reveal: bool) -> Result<Vec<ConnectionView>, Refusal> {
        let rows = self.store.search_connections(text, 200).await?;
        if reveal {
            // The audit log (which every moderator sees) names an address by its hash.
            let searched = match text.trim().parse::<IpAddr>() {
                Ok(ip) => format!("address {}", self.hasher.hash(ip)),
                Err(_) => text.trim().to_owned(),
            };
            self.audit("reveal_addresses", &searched, "", format!("{} row(s)", rows.len())).await;
        }
        Ok(rows
            .into_iter()
            .map(|row| ConnectionView {
                opened_at: row.opened_at,
                closed_at: row.closed_at,
                ip: reveal.then_some(row.ip),
                ip_hash: row.ip_hash,
                user_agent: row.user_agent,
                joins: row.joins,
            })
            .collect())
    }

    /// Files a report with the room as the server sees it now.
    pub async fn report(
        &self,
        room: &crate::hub::Room,
        seq: u64,
        reporter_hash: &str,
        reason: &str,
    ) -> Result<(), Refusal> {
        let snapshot = room.report_snapshot(REPORT_SNAPSHOT);
        let report = Report {
            id: 0,
            at: now_ms(),
            room: room.slug.to_string(),
            message_seq: seq,
            reporter_hash: reporter_hash.to_owned(),
            reason: reason.chars().take(500).collect(),
            snapshot: serde_json::to_string(&snapshot).unwrap_or_else(|_| "[]".to_owned()),
            resolved_at: None,
        };
        self.store.add_report(&report).await?;
        Ok(())
    }

    /// The Discord bridge, if the server runs one.
    pub fn bridge(&self) -> Option<Arc<crate::bridge::Bridge>> {
        self.discord.get().and_then(std::sync::Weak::upgrade)
    }

    /// Everything the console shows.
    pub async fn snapshot(&self, hub: &Hub) -> ModSnapshot {
        let reports = self.store.reports(CONSOLE_ROWS).await.unwrap_or_else(|error| {
            tracing::error!(%error, "cannot read reports");
            Vec::new()
        });
        let audit = self.store.audit_log(CONSOLE_ROWS).await.unwrap_or_else(|error| {
            tracing::error!(%error, "cannot read the audit log");
            Vec::new()
        });
        let mut rooms = hub.mod_rooms();
        // A node that does not listen to a room shows its messages as Redis keeps them.
        if let Some(shared) = hub.cluster() {
            for room in rooms.iter_mut().filter(|r| !shared.hears(&r.room.slug)) {
                if let Some(messages) = shared.console_messages(&room.room.slug).await {
                    room.recent = messages;
                }
            }
        }
        ModSnapshot {
            rooms,
            bans: self.bans.list(now_ms()).iter().map(|ban| self.ban_view(ban)).collect(),
            reports: reports
                .into_iter()
                .map(|r| ReportView {
                    id: r.id,
                    at: r.at,
                    room: r.room,
                    message_seq: r.message_seq,
                    reason: r.reason,
                    snapshot: serde_json::from_str::<Vec<ModMessage>>(&r.snapshot).unwrap_or_default(),
                    resolved: r.resolved_at.is_some(),
                })
                .collect(),
            audit: audit
                .into_iter()
                .map(|a| AuditView { at: a.at, action: a.action, target: a.target, reason: a.reason })
                .collect(),
            discord: self.bridge().map(|bridge| bridge.view()),
        }
    }

    /// Sends the console snapshot to `conn` now, and again whenever it changes.
    pub fn watch(&self, conn: &ConnHandle, session: String) {
        let watcher = (conn.clone(), session, Frame::default());
        self.consoles.0.lock().unwrap_or_else(PoisonError::into_inner).insert(conn.id, watcher);
    }

    pub fn unwatch(&self, conn_id: u64) {
        self.consoles.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&conn_id);
    }

    /// Called on a timer: a fresh snapshot to every console that has not seen this one yet.
    pub async fn refresh_consoles(&self, hub: &Hub) {
        if self.consoles.0.lock().unwrap_or_else(PoisonError::into_inner).is_empty() {
            return;
        }
        let frame = Frame::encode(&ServerMsg::ModSnapshot { snapshot: self.snapshot(hub).await });
        let mut watchers = self.consoles.0.lock().unwrap_or_else(PoisonError::into_inner);
        watchers.retain(|_, (conn, session, last)| {
            // Signed out or expired since: the console stops seeing anything.
            if !self.auth.session_alive(session) {
                let ended =
                    ServerMsg::error(ErrorCode::PermissionDenied, "Your moderator session has ended.".to_owned());
                conn.offer(Frame::encode(&ended));
                return false;
            }
            if *last == frame {
                return true;
            }
            *last = frame.clone();
            conn.offer(frame.clone()) == Offer::Queued
        });
    }
}

/// In cluster mode, the other nodes redo on their replicas what a moderator just did here.
async fn share(hub: &Hub, room: &str, decision: Decision) {
    if let Some(rooms) = hub.cluster() {
        rooms.moderated(room, decision, None).await;
    }
}

/// A message's author changed it on the other side of a bridge: the room shows and keeps the
/// new text, on every node. False if the room no longer has the message.
pub async fn edit_message(hub: &Hub, room: &str, seq: u64, text: &str) -> bool {
    let Some(before) = hub.room(room).and_then(|r| r.edit_message(seq, text)) else { return false };
    if let Some(rooms) = hub.cluster() {
        rooms.moderated(room, Decision::Edit { seq, text: text.to_owned() }, Some(before)).await;
    }
    true
}
