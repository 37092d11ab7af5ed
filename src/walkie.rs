//! [`Walkie`]: the running chat service, for `main` and for apps that embed
//! walkie.

use std::sync::Arc;

use actix::prelude::*;

use crate::access::Access;
use crate::chat::{ChatServer, Inbox, Post, Shutdown};
use crate::cluster::{default_node_id, namespace_of, Cluster, ClusterError};
use crate::config::{Config, Limits};
use crate::db;
use crate::domain::{RoomName, Text, UserName};
use crate::error::ChatError;
use crate::metrics::Metrics;
use crate::notify::NotificationActor;
use crate::protocol::ChatMessage;
use crate::store::MessageStore;

/// Why walkie could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated, or its rooms read.
    #[error(transparent)]
    Open(#[from] db::OpenError),
    /// A metric could not be registered (a duplicate name is a bug).
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Cluster mode was asked for and cannot run.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The listening socket could not be bound.
    #[error("cannot listen on {address}: {source} (is another server using that port?)")]
    Bind {
        /// The `--bind` address asked for.
        address: String,
        /// The operating system's reason (address in use, permission denied...).
        source: std::io::Error,
    },
}

/// A handle to the running actors (the `ChatServer`, the database and
/// notification workers); cheap to clone.
///
/// ```no_run
/// use actix_web::{web, App, HttpServer, Responder};
/// use walkie::{Config, Walkie};
///
/// async fn deploy(walkie: web::Data<Walkie>) -> impl Responder {
///     // Like Django Channels' `group_send`: post to a room from any handler.
///     match walkie.post("ops", "deploybot", "deploy finished").await {
///         Ok(message) => format!("posted as #{}", message.id),
///         Err(error) => format!("not posted: {error}"),
///     }
/// }
///
/// #[actix_web::main]
/// async fn main() -> std::io::Result<()> {
///     let walkie = Walkie::start(&Config::with_database("chat.db")).map_err(std::io::Error::other)?;
///     HttpServer::new(move || {
///         App::new()
///             .app_data(web::Data::new(walkie.clone()))
///             .route("/deploy", web::post().to(deploy))
///             .service(web::scope("/chat").configure(walkie.routes()))
///     })
///     .bind("127.0.0.1:8080")?
///     .run()
///     .await
/// }
/// ```
#[derive(Clone)]
pub struct Walkie {
    chat: Addr<ChatServer>,
    inbox: Arc<Inbox>,
    store: Arc<dyn MessageStore>,
    limits: Limits,
    access: Arc<Access>,
    metrics: Arc<Metrics>,
    /// With `--redis-url`: told at shutdown that this node leaves.
    cluster: Option<Cluster>,
}

/// How long shutdown waits for Redis to take this node's leaving.
const LEAVE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Walkie {
    /// Opens and migrates the database, then starts the actors. Call from
    /// inside a running actix system (`#[actix_web::main]`).
    pub fn start(config: &Config) -> Result<Self, StartError> {
        let redis_url = config.cluster.redis_url.as_deref();
        if redis_url.is_some() && db::Backend::of(&config.database.url) != db::Backend::Postgres {
            return Err(ClusterError::NeedsPostgres.into());
        }
        let db::Opened { store, pending_mentions, rooms } =
            db::start(&config.database.url, db::Create::IfMissing)?;
        let metrics = Arc::new(Metrics::new()?);
        // The context first: the inbox and the cluster need the server's
        // address before the server exists.
        let context = Context::<ChatServer>::new();
        let inbox = Arc::new(Inbox::new(context.address()));
        let cluster = match redis_url {
            Some(url) => {
                let name = config.cluster.node_id.clone().unwrap_or_else(default_node_id);
                let namespace = namespace_of(&config.database.url);
                Some(Cluster::start(url, &namespace, &name, context.address().recipient())?)
            }
            None => None,
        };
        let worker_metrics = metrics.clone();
        let notifier = SyncArbiter::start(1, move || {
            NotificationActor::new(pending_mentions.clone(), worker_metrics.clone())
        });
        let server = ChatServer::new(
            store.clone(),
            notifier,
            inbox.clone(),
            rooms,
            cluster.clone(),
            metrics.clone(),
        );
        let chat = context.run(server);
        Ok(Self {
            chat,
            inbox,
            store,
            limits: config.limits(),
            access: Arc::new(Access::new(config)),
            metrics,
            cluster,
        })
    }

    /// Posts `text` to `room` as `from`, creating the room if needed, and
    /// returns the stored message once it is delivered to the room's
    /// members.
    pub async fn post(&self, room: &str, from: &str, text: &str) -> Result<ChatMessage, ChatError> {
        let room = RoomName::parse(room).map_err(ChatError::BadRequest)?;
        let from = UserName::parse(from).map_err(ChatError::BadRequest)?;
        let text = Text::parse(text, self.limits.max_text_chars).map_err(ChatError::BadRequest)?;
        let post = Post { room, from, text, idempotency_key: None };
        let posted = self.chat.send(post).await.map_err(|error| {
            log::error!("the chat server did not answer a post: {error}");
            ChatError::Internal
        })??;
        Ok(posted.message)
    }

    /// Stores and acknowledges every message already received, then closes
    /// every session with 1001. New messages are refused afterwards.
    pub async fn shutdown(&self) {
        if let Err(error) = self.chat.send(Shutdown).await {
            log::error!("the chat server stopped before shutting down cleanly: {error}");
        }
        if let Some(cluster) = &self.cluster {
            cluster.leave(LEAVE_WAIT).await;
        }
    }

    /// The `ChatServer`, to send it messages of [`crate::chat`] directly.
    pub fn chat(&self) -> &Addr<ChatServer> {
        &self.chat
    }

    /// Where sessions put their `join`s, `say`s and `leave`s for the
    /// `ChatServer`, in order (see [`Inbox`] for why not its mailbox).
    pub fn inbox(&self) -> &Arc<Inbox> {
        &self.inbox
    }

    /// The message store.
    pub fn store(&self) -> Arc<dyn MessageStore> {
        self.store.clone()
    }

    /// What every session enforces, derived from the [`Config`] at start.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The figures `/metrics` exports.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Who may connect: origins, tokens, the connection limit.
    pub fn access(&self) -> &Access {
        &self.access
    }
}
