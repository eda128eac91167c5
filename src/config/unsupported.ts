/**
 * mosquitto.conf keys that Midge knows but does not implement yet. Using one is an error that says so
 * (rather than "unknown"), so that a mosquitto user knows the file is right and Midge is behind.
 * From the mosquitto.conf(5) man page (mosquitto 2.0).
 */
export const UNSUPPORTED_KEYS: ReadonlySet<string> = new Set([
  // General options
  'allow_duplicate_messages', 'auth_plugin', 'auth_plugin_deny_special_chars', 'auto_id_prefix',
  'check_retain_source', 'enable_control_api', 'global_plugin', 'listener_allow_anonymous', 'listener_auto_id_prefix',
  'log_facility', 'log_timestamp_format', 'plugin', 'plugin_load',
  'plugin_use', 'psk_file', 'set_tcp_nodelay', 'websockets_log_level',
  // Listener options
  'accept_protocol_versions', 'bind_interface', 'max_qos', 'use_username_as_clientid',
  'enable_proxy_protocol',
  // Listener TLS and PSK options
  'ciphers_tls1.3', 'dhparamfile', 'disable_client_cert_date_checks', 'psk_hint', 'tls_engine',
  'tls_engine_kpass_sha1', 'tls_keyform',
  // Bridges (the rest are supported: bridge.ts; bridge_psk and bridge_identity are refused there)
  'bridge_ciphers_tls1.3', 'bridge_max_topic_alias', 'bridge_reload_type', 'bridge_require_ocsp',
  'bridge_tcp_keepalive', 'bridge_tcp_user_timeout', 'bridge_tls_use_os_certs',
]);

/** Key prefixes of plugin options (`auth_opt_db_host`, `plugin_opt_foo`): plugins are not supported yet. */
export const UNSUPPORTED_PREFIXES: readonly string[] = ['auth_opt_', 'plugin_opt_'];

/** Keys that mosquitto itself no longer acts on; Midge reports them instead of ignoring them. */
export const OBSOLETE_KEYS: ReadonlySet<string> = new Set(['retry_interval', 'store_clean_interval']);
