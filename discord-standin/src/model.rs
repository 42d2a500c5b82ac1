//! Builds Discord's wire objects (users, messages, channels, READY, error bodies) out of
//! twilight-model types, so the JSON the stand-in writes is the JSON the bridge's client reads:
//! a field Discord requires cannot go missing without this crate failing to compile or its
//! round-trip tests failing.

use serde_json::{Value, json};
use twilight_model::{
    channel::{
        Message,
        message::{Embed, Mention, MessageType},
    },
    gateway::{ShardId, payload::incoming::Ready},
    guild::UnavailableGuild,
    id::Id,
    oauth::{ApplicationFlags, PartialApplication},
    user::{CurrentUser, User, UserFlags},
    util::Timestamp,
};

/// Discord's epoch (2015-01-01T00:00:00Z) in unix milliseconds: snowflakes count from it.
pub(crate) const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Ids reaching the builders were checked where they entered (config at start-up, the control
/// API); `Id::new` panics on zero, so a zero that slips through becomes 1 instead of a panic.
pub(crate) fn id<M>(n: u64) -> Id<M> {
    Id::new_checked(n).unwrap_or(Id::new(1))
}

/// A guild member as a message author or mention target. Discord dropped discriminators for
/// people (`"0"`); bots keep theirs, but the bridge only reads `bot` and `id`.
pub(crate) fn user(user_id: u64, name: &str, bot: bool) -> User {
    User {
        accent_color: None,
        avatar: None,
        avatar_decoration: None,
        avatar_decoration_data: None,
        banner: None,
        bot,
        discriminator: 0,
        email: None,
        flags: None,
        global_name: if bot { None } else { Some(name.to_owned()) },
        id: id(user_id),
        locale: None,
        mfa_enabled: None,
        name: name.to_owned(),
        premium_type: None,
        primary_guild: None,
        public_flags: None,
        system: None,
        verified: None,
    }
}

/// The bot as `GET users/@me` and READY describe it.
pub(crate) fn current_user(bot_id: u64, name: &str) -> CurrentUser {
    CurrentUser {
        accent_color: None,
        avatar: None,
        banner: None,
        bot: true,
        discriminator: 0,
        email: None,
        flags: Some(UserFlags::empty()),
        global_name: None,
        id: id(bot_id),
        locale: Some("en-US".to_owned()),
        mfa_enabled: false,
        name: name.to_owned(),
        premium_type: None,
        public_flags: Some(UserFlags::empty()),
        verified: Some(true),
    }
}

/// How a message lists a user it mentions with `<@id>`.
pub(crate) fn mention(user_id: u64, name: &str, bot: bool) -> Mention {
    Mention {
        avatar: None,
        bot,
        discriminator: 0,
        id: id(user_id),
        member: None,
        name: name.to_owned(),
        public_flags: UserFlags::empty(),
    }
}

/// A plain guild text message with every field Discord always sends; callers adjust the rest.
#[allow(deprecated)] // `interaction` is deprecated in twilight-model but still a field of the struct
pub(crate) fn message(
    message_id: u64,
    channel: u64,
    guild: u64,
    author: User,
    content: &str,
    embeds: Vec<Embed>,
    timestamp: Timestamp,
) -> Message {
    Message {
        activity: None,
        application: None,
        application_id: None,
        attachments: Vec::new(),
        author,
        call: None,
        channel_id: id(channel),
        components: Vec::new(),
        content: content.to_owned(),
        edited_timestamp: None,
        embeds,
        flags: None,
        guild_id: Some(id(guild)),
        id: id(message_id),
        interaction: None,
        interaction_metadata: None,
        kind: MessageType::Regular,
        member: None,
        mention_channels: Vec::new(),
        mention_everyone: false,
        mention_roles: Vec::new(),
        mentions: Vec::new(),
        message_snapshots: Vec::new(),
        pinned: false,
        poll: None,
        reactions: Vec::new(),
        reference: None,
        referenced_message: None,
        role_subscription_data: None,
        sticker_items: Vec::new(),
        timestamp,
        thread: None,
        tts: false,
        webhook_id: None,
    }
}

/// A guild text channel. `Channel` is large and mostly optional, so it is written as JSON and a
/// unit test proves it deserialises into `twilight_model::channel::Channel`.
pub(crate) fn channel_json(channel: u64, guild: u64, name: &str, position: usize, last_message: Option<u64>) -> Value {
    json!({
        "id": channel.to_string(),
        "type": 0,
        "guild_id": guild.to_string(),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "nsfw": false,
        "topic": null,
        "last_message_id": last_message.map(|m| m.to_string()),
        "rate_limit_per_user": 0,
        "parent_id": null,
        "flags": 0,
    })
}

/// The READY payload. twilight's shard reads only `session_id` and `resume_gateway_url`; the rest
/// is what Discord sends a bot that sees one guild.
pub(crate) fn ready(bot: CurrentUser, guild: u64, session_id: String, resume_gateway_url: String) -> Ready {
    Ready {
        application: PartialApplication { flags: ApplicationFlags::empty(), id: bot.id.cast() },
        guilds: vec![UnavailableGuild { id: id(guild), unavailable: true }],
        resume_gateway_url,
        session_id,
        shard: Some(ShardId::ONE),
        user: bot,
        version: 10,
    }
}

/// Discord's general error body (`ApiError::General` in twilight-http).
pub(crate) fn api_error(code: u64, message: &str) -> Value {
    json!({ "message": message, "code": code })
}

/// Discord's 400 for a field that fails validation: the general shape plus the `errors` tree
/// Discord adds (`{"content": {"_errors": [{code, message}]}}`).
pub(crate) fn invalid_form_body(field_path: &[&str], error_code: &str, text: &str) -> Value {
    let mut errors = json!({ "_errors": [{ "code": error_code, "message": text }] });
    for key in field_path.iter().rev() {
        errors = json!({ *key: errors });
    }
    json!({ "message": "Invalid Form Body", "code": 50035, "errors": errors })
}

/// Discord's 429 body (`ApiError::Ratelimited` in twilight-http).
pub(crate) fn rate_limited(global: bool, retry_after_secs: f64) -> Value {
    json!({ "message": "You are being rate limited.", "retry_after": round3(retry_after_secs), "global": global })
}

/// Discord writes rate-limit seconds with millisecond precision.
pub(crate) fn round3(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use twilight_model::channel::{Channel, ChannelType};

    #[test]
    fn the_channel_json_is_a_twilight_channel() {
        let value = channel_json(600, 500, "general", 0, Some(1234));
        let channel: Channel = serde_json::from_value(value).expect("channel");
        assert_eq!(channel.id.get(), 600);
        assert_eq!(channel.kind, ChannelType::GuildText);
        assert_eq!(channel.guild_id.map(Id::get), Some(500));
        assert_eq!(channel.name.as_deref(), Some("general"));
        assert_eq!(channel.last_message_id.map(Id::get), Some(1234));
    }

    #[test]
    fn a_message_survives_a_round_trip_with_the_fields_discord_always_sends() {
        let ts = Timestamp::from_secs(1_764_693_000).expect("timestamp");
        let built = message(77, 600, 500, user(42, "dana", false), "hi", Vec::new(), ts);
        let json = serde_json::to_value(&built).expect("serialise");
        for field in ["attachments", "author", "call", "channel_id", "content", "edited_timestamp", "embeds", "id"] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
        assert_eq!(json["author"]["username"], "dana");
        assert_eq!(json["author"]["discriminator"], "0");
        assert_eq!(json["id"], "77");
        let back: Message = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, built);
    }

    #[test]
    fn ready_and_current_user_round_trip() {
        let bot = current_user(900, "burner-bridge");
        let ready = ready(bot.clone(), 500, "s".into(), "ws://127.0.0.1:1/resume".into());
        let json = serde_json::to_value(&ready).expect("serialise");
        assert_eq!(json["v"], 10);
        assert_eq!(json["shard"], json!([0, 1]));
        assert_eq!(json["application"]["id"], "900");
        let back: Ready = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back.user, bot);
        let me: CurrentUser = serde_json::from_value(serde_json::to_value(&bot).expect("ser")).expect("de");
        assert!(me.bot);
    }

    #[test]
    fn invalid_form_body_nests_the_errors_under_the_field_path() {
        let body = invalid_form_body(&["embeds", "0", "description"], "BASE_TYPE_MAX_LENGTH", "too long");
        assert_eq!(body["code"], 50035);
        assert_eq!(body["errors"]["embeds"]["0"]["description"]["_errors"][0]["code"], "BASE_TYPE_MAX_LENGTH");
    }
}
