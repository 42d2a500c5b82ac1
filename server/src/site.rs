//! The server's side of the app's server functions (`app::api::Backend`).

use crate::{error::Refusal, hub::Hub, limits::IpLimits, moderation::Moderation};
use app::{
    api::{ApiError, Backend, NewRoom, RoomPreview},
    protocol::{ConnectionView, ErrorCode, ModAction, RoomSummary},
    rules,
};
use axum::http::HeaderMap;
use std::{net::IpAddr, sync::Arc};

pub struct Site {
    pub hub: Arc<Hub>,
    pub ip_limits: Arc<IpLimits>,
    pub moderation: Arc<Moderation>,
    pub max_room_limit: u32,
}

impl Site {
    fn moderator(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.moderation.auth.is_moderator(headers) {
            Ok(())
        } else {
            Err(Refusal::permission_denied("Only moderators can do that: sign in at /mod."))
        }
    }

    async fn create(&self, peer: IpAddr, headers: &HeaderMap, room: NewRoom) -> Result<RoomSummary, Refusal> {
        let creator = self.moderation.visitor(peer, headers);
        if let Some(banned) = creator.banned() {
            return Err(banned);
        }
        // Only a well-formed request spends one of the creator's room tokens.
        rules::room_name(&room.name).map_err(Refusal::room_name)?;
        if !(rules::ROOM_LIMIT_MIN..=self.max_room_limit).contains(&room.limit) {
            return Err(Refusal::limit_invalid(self.max_room_limit));
        }
        if let Err(retry) = self.ip_limits.room_creation.take(creator.ip, 1) {
            let seconds = retry.0.as_secs().max(1);
            return Err(Refusal::new(
                ErrorCode::RateLimited,
                format!("You are creating rooms too quickly. Try again in {seconds} seconds."),
            )
            .retry_after(retry.0));
        }
        let created = self.hub.create_room(room)?;
        if let Some(rooms) = self.hub.cluster()
            && let Err(refusal) = rooms.create(&created.record(), created.name_key()).await
        {
            // Another node has a look-alike room (or Redis did not answer): not made here either.
            self.hub.remove_replica(&created.slug, "not created");
            return Err(refusal);
        }
        // The room works even if this fails; it would just not survive a restart.
        if let Err(error) = self.moderation.store.save_room(&created.record()).await {
            tracing::error!(%error, room = %created.slug, "cannot save the new room's settings");
        }
        Ok(created.summary())
    }
}

#[async_trait::async_trait]
impl Backend for Site {
    fn rooms(&self) -> Vec<RoomSummary> {
        self.hub.listed_rooms()
    }

    async fn preview(&self, slug: &str) -> Option<RoomPreview> {
        let mut preview = self.hub.preview(slug).await?;
        preview.bridged_to = self.moderation.bridge().and_then(|bridge| bridge.bridged_to(slug));
        Some(preview)
    }

    async fn create_room(&self, peer: IpAddr, headers: &HeaderMap, room: NewRoom) -> Result<RoomSummary, ApiError> {
        Ok(self.create(peer, headers, room).await?)
    }

    async fn moderate(&self, headers: &HeaderMap, action: ModAction) -> Result<String, ApiError> {
        self.moderator(headers)?;
        let done = match (action, self.moderation.bridge()) {
            (ModAction::LinkDiscord { room, channel_id, joins }, Some(bridge)) => {
                let done = bridge.link(&room, &channel_id, joins).await?;
                let detail = format!("channel {}", channel_id.trim());
                self.moderation.audit("link_discord", &room, "", detail).await;
                done
            }
            (ModAction::UnlinkDiscord { room }, Some(bridge)) => {
                let done = bridge.unlink(&room).await?;
                self.moderation.audit("unlink_discord", &room, "", String::new()).await;
                done
            }
            (ModAction::MuteDiscordAuthor { room, seq }, Some(bridge)) => {
                let done = bridge.mute(&room, seq).await?;
                self.moderation.audit("mute_discord_author", &format!("#{seq} in {room}"), "", String::new()).await;
                done
            }
            (ModAction::UnmuteDiscordAuthor { room, author_id }, Some(bridge)) => {
                let done = bridge.unmute(&room, &author_id).await?;
                let target = format!("Discord user {author_id} in {room}");
                self.moderation.audit("unmute_discord_author", &target, "", String::new()).await;
                done
            }
            (action, _) => self.moderation.command(&self.hub, action).await?,
        };
        self.moderation.refresh_consoles(&self.hub).await;
        Ok(done)
    }

    async fn search_log(
        &self,
        headers: &HeaderMap,
        text: String,
        reveal: bool,
    ) -> Result<Vec<ConnectionView>, ApiError> {
        self.moderator(headers)?;
        Ok(self.moderation.search(&text, reveal).await?)
    }
}
