//! What travels on the control bus, and what each node does with it. JSON on the wire: rare,
//! small messages, readable with `redis-cli subscribe burner:control` when something is amiss.

use crate::{
    moderation::Moderation,
    store::{Ban, BanTarget},
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// A moderator banned someone: every node refuses them and closes their sockets.
    BanAdded {
        ban: WireBan,
    },
    BanLifted {
        id: i64,
    },
    /// A moderator signed in through one node: the cookie works on every node.
    SessionOpened {
        id: String,
        expires_at: i64,
    },
    SessionClosed {
        id: String,
    },
    /// A node's message to itself, proving its subscription still delivers.
    Probe {
        node: String,
        n: u64,
    },
}

/// A ban as the store keeps it (`kind` + `target` columns), so it crosses the bus unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireBan {
    pub id: i64,
    pub kind: String,
    pub target: String,
    pub reason: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

impl From<&Ban> for WireBan {
    fn from(ban: &Ban) -> Self {
        let (kind, target) = ban.target.columns();
        Self {
            id: ban.id,
            kind: kind.to_owned(),
            target,
            reason: ban.reason.clone(),
            created_at: ban.created_at,
            expires_at: ban.expires_at,
        }
    }
}

impl WireBan {
    fn into_ban(self) -> Option<Ban> {
        let target = BanTarget::from_columns(self.kind, self.target).ok()?;
        Some(Ban { id: self.id, target, reason: self.reason, created_at: self.created_at, expires_at: self.expires_at })
    }
}

impl Control {
    pub fn encode(&self) -> Vec<u8> {
        // Serialising these plain types cannot fail; an empty payload would be ignored.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// Does on this node what another node (or this one) decided.
    pub fn apply(self, moderation: &Moderation) {
        match self {
            Self::BanAdded { ban } => match ban.into_ban() {
                Some(ban) => {
                    moderation.enforce_ban(ban);
                }
                None => tracing::warn!("cluster: a ban with an unreadable target ignored"),
            },
            Self::BanLifted { id } => {
                moderation.bans.remove(id);
            }
            Self::SessionOpened { id, expires_at } => moderation.auth.admit(&id, expires_at),
            Self::SessionClosed { id } => moderation.auth.revoke(&id),
            Self::Probe { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_keep_their_shape_on_the_wire() {
        let ban = Ban {
            id: 7,
            target: BanTarget::Net("2001:db8::/64".parse().expect("net")),
            reason: "raid".into(),
            created_at: 1,
            expires_at: None,
        };
        let added = Control::BanAdded { ban: WireBan::from(&ban) };
        assert_eq!(
            String::from_utf8(added.encode()).expect("utf-8"),
            r#"{"type":"ban_added","ban":{"id":7,"kind":"net","target":"2001:db8::/64","reason":"raid","created_at":1,"expires_at":null}}"#
        );
        assert_eq!(Control::decode(&added.encode()), Some(added.clone()));
        let Some(Control::BanAdded { ban: wire }) = Control::decode(&added.encode()) else { panic!("ban") };
        assert_eq!(wire.into_ban(), Some(ban));
        assert_eq!(Control::decode(br#"{"type":"ban_lifted","id":3}"#), Some(Control::BanLifted { id: 3 }));
        assert_eq!(Control::decode(b"not json"), None);
        assert_eq!(Control::decode(br#"{"type":"launch_missiles"}"#), None);
    }
}
