// Why this target exists: sofia-sip's nua API takes variadic tag lists (`nua_respond(nh, 200, "OK",
// SIPTAG_PAYLOAD_STR(sdp), TAG_END())`), its tag macros expand to two values, and its log hook takes a va_list.
// Swift can call none of these. These wrappers take a `const tagi_t *` array that Swift builds and forward it as
// TAG_NEXT(tags), which is sofia's own idiom. Tag identities are compared by address, so every tag Swift uses is
// exported through an accessor here (a Swift copy of a tag object would have the wrong address).
#ifndef TRUNKLINE_SOFIA_SHIM_H
#define TRUNKLINE_SOFIA_SHIM_H

// glibc's fd_set must be seen before sofia's su_configure.h defines _GNU_SOURCE (see c-interop notes).
#include <sys/types.h>
#include <sys/select.h>
#include <stddef.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sip.h>

// MARK: - Tag-list forms of the variadic nua calls
nua_t *tl_nua_create(su_root_t *root, nua_callback_f callback, nua_magic_t *magic, tagi_t const *tags);
void tl_nua_set_params(nua_t *nua, tagi_t const *tags);
void tl_nua_respond(nua_handle_t *nh, int status, char const *phrase, tagi_t const *tags);
void tl_nua_bye(nua_handle_t *nh, tagi_t const *tags);
void tl_nua_invite(nua_handle_t *nh, tagi_t const *tags);
void tl_nua_cancel(nua_handle_t *nh, tagi_t const *tags);
/// An in-dialog INFO (e.g. DTMF as application/dtmf-relay); content type and body go in the tags.
void tl_nua_info(nua_handle_t *nh, tagi_t const *tags);
nua_handle_t *tl_nua_handle(nua_t *nua, nua_hmagic_t *hmagic, tagi_t const *tags);
void tl_nua_authenticate(nua_handle_t *nh, tagi_t const *tags);
void tl_nua_options(nua_handle_t *nh, tagi_t const *tags);
/// An in-dialog REFER (RFC 3515); Refer-To goes in the tags. nua keeps the implied subscription and answers its
/// NOTIFYs itself (nua_i_notify).
void tl_nua_refer(nua_handle_t *nh, tagi_t const *tags);
void tl_nua_register(nua_handle_t *nh, tagi_t const *tags);
void tl_nua_unregister(nua_handle_t *nh, tagi_t const *tags);

/// Responds to the request nua is currently delivering (only inside the nua callback), e.g. an in-dialog INFO.
void tl_nua_respond_current(nua_t *nua, nua_handle_t *nh, int status, char const *phrase, tagi_t const *tags);

// MARK: - Tags (identities by address)
tag_type_t tl_tag_null(void);
tag_type_t tl_nutag_url(void);
tag_type_t tl_nutag_autoanswer(void);
tag_type_t tl_nutag_autoack(void);
tag_type_t tl_nutag_media_enable(void);
tag_type_t tl_siptag_allow_str(void);
tag_type_t tl_nutag_appl_method(void);
tag_type_t tl_nutag_with(void);
tag_type_t tl_nutag_callstate(void);
tag_type_t tl_ntatag_server_rport(void);
tag_type_t tl_siptag_payload_str(void);
tag_type_t tl_siptag_content_type_str(void);
tag_type_t tl_siptag_header_str(void);
tag_type_t tl_siptag_reason_str(void);
tag_type_t tl_siptag_user_agent_str(void);
tag_type_t tl_siptag_server_str(void);
tag_type_t tl_siptag_to_str(void);
tag_type_t tl_siptag_from_str(void);
tag_type_t tl_nutag_auth(void);
tag_type_t tl_siptag_call_id_str(void);
tag_type_t tl_siptag_refer_to_str(void);
tag_type_t tl_nutag_sips_url(void);
tag_type_t tl_siptag_contact_str(void);
tag_type_t tl_tptag_certificate(void);
tag_type_t tl_tptag_tls_verify_policy(void);
/// The verify policy for TLS connections we open: the server's chain to `cafile.pem`, and its certificate's
/// subject names the host we connected to.
unsigned tl_tls_verify_servers(void);
tag_type_t tl_nutag_registrar(void);
tag_type_t tl_nutag_m_username(void);
tag_type_t tl_siptag_expires_str(void);
tag_type_t tl_ntatag_maxsize(void);
tag_type_t tl_ntatag_merge_482(void);

// MARK: - Reading events
/// The call state carried by a nua_i_state event's tag list, or -1.
int tl_callstate(tagi_t const *tags);
/// The source address of the request nua is currently delivering (only valid inside the nua callback).
/// Writes a numeric host (NUL-terminated) into `host` and the port; returns 0 on success.
int tl_current_request_source(nua_t *nua, char *host, size_t hostlen, int *port, int *is_tcp);
/// Serialises one header (e.g. sip->sip_from) into a heap string the caller frees with free(); NULL if absent.
char *tl_header_string(msg_header_t const *header);

/// Whether a NOTIFY's Subscription-State is `terminated` (1), another state (0), or absent (-1).
int tl_subscription_terminated(sip_t const *sip);

/// The realm of the first digest challenge in a 401/407 (Proxy-Authenticate first), quotes included, as
/// NUTAG_AUTH wants it; returns 0 when found.
int tl_challenge_realm(sip_t const *sip, char *realm, size_t realmlen);

/// The Request-URI of a request as text, in a heap string the caller frees with free(); NULL if absent.
char *tl_request_uri(sip_t const *sip);
/// The lifetime a registrar granted in its 2xx (the Contact's expires, else Expires), or -1.
int tl_registration_expires(sip_t const *sip);

// MARK: - Commands into the sofia thread
typedef void (*tl_task_f)(void *context);
/// Posts `task(context)` to run on the thread running `root` (mutex-protected queue that wakes the loop).
int tl_post(su_root_t *root, tl_task_f task, void *context);
/// Runs `task(context)` on the sofia thread after `milliseconds` (a one-shot su_timer; call on that thread).
int tl_after(su_root_t *root, unsigned milliseconds, tl_task_f task, void *context);

// MARK: - Logging
typedef void (*tl_log_f)(int level, char const *line);
/// Redirects sofia's default log to `sink`, formatted; level 0-9 as sofia's.
void tl_log_redirect(tl_log_f sink, int level);

#endif
