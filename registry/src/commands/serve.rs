//! `serve`: the SSH gateway and the HTTP API until Ctrl-C or SIGTERM.

use crate::cli::ServeArgs;
use crate::failure::Failure;
use crate::serve::{self, ServeOptions};
use crate::store::Store;
use pra_proto::codes::Code;
use std::io::Write;
use std::sync::Arc;

pub(crate) fn serve_command(
    store: Arc<Store>,
    data: &std::path::Path,
    args: ServeArgs,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let host_key = crate::gateway::hostkey::load_or_create(data)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                Code::RegistryListen,
                format!("cannot start the runtime: {e}"),
                "check the system's limits (threads, memory)",
            )
        })?;
    let fingerprint = host_key.fingerprint();
    let mut opts = ServeOptions {
        ssh: args.ssh,
        api: args.api,
        gateway: Some(crate::gateway::GatewayConfig {
            gateway_id: args.gateway_id.filter(|id| !id.trim().is_empty()),
            max_sessions_per_key: args.max_sessions_per_key,
            ..crate::gateway::GatewayConfig::new(host_key)
        }),
        metrics: args.metrics,
        ..ServeOptions::default()
    };
    opts.api_config.web.host_key = Some(fingerprint.clone());
    opts.api_config.trusted_proxies = crate::api::proxy::TrustedProxies::new(args.trusted_proxy);
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        let files = crate::api::tls::TlsFiles { cert, key };
        let reloading = crate::api::tls::Reloading::new(files).map_err(|e| {
            Failure::new(
                Code::RegistryTlsFiles,
                format!("cannot use the API's TLS certificate: {e}"),
                Code::RegistryTlsFiles.fix(),
            )
        })?;
        opts.api_config.tls = Some(reloading);
    }
    opts.audit_retention =
        (args.audit_keep > 0).then(|| crate::retention::Retention::days(args.audit_keep));
    runtime.block_on(async move {
        let listeners = serve::bind(&opts).await?;
        let api = listeners.api_addr().map_err(|e| {
            Failure::new(
                Code::RegistryListen,
                format!("the API listener has no address: {e}"),
                Code::RegistryListen.fix(),
            )
        })?;
        // Tests and scripts read these lines.
        let _ = writeln!(out, "api listening on {api}");
        if let Some(ssh) = listeners.ssh_addr() {
            let _ = writeln!(out, "{}", crate::gateway::listening_line(ssh, &fingerprint));
        }
        if let Some(metrics) = listeners.metrics_addr() {
            let _ = writeln!(out, "metrics listening on {metrics}");
        }
        let _ = out.flush();
        let stop = pra_proto::rt::shutdown_signal(|e| {
            tracing::warn!(%e, "cannot watch SIGTERM; only Ctrl-C stops the registry");
        });
        serve::run(listeners, store, opts, stop).await.map_err(|e| {
            Failure::new(
                Code::RegistryListen,
                format!("the registry stopped: {e}"),
                "read the log above for the cause",
            )
        })
    })
}
