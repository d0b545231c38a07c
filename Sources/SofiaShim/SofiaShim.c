#include "SofiaShim.h"
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/tport.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>
#include <netinet/in.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

nua_t *tl_nua_create(su_root_t *root, nua_callback_f callback, nua_magic_t *magic, tagi_t const *tags) {
    return nua_create(root, callback, magic, TAG_NEXT(tags));
}
void tl_nua_set_params(nua_t *nua, tagi_t const *tags) { nua_set_params(nua, TAG_NEXT(tags)); }
/* nua_respond queues the phrase *pointer* (nua_signal copies the tags, not the phrase) and reads it after
   the caller's buffer is gone, which put garbage on the status line. The copy lives in the handle's home,
   so it lasts as long as anything that can still send the response. */
static char const *tl_lasting_phrase(nua_handle_t *nh, char const *phrase) {
    return phrase ? su_strdup(nua_handle_home(nh), phrase) : NULL;
}
void tl_nua_respond(nua_handle_t *nh, int status, char const *phrase, tagi_t const *tags) {
    nua_respond(nh, status, tl_lasting_phrase(nh, phrase), TAG_NEXT(tags));
}
void tl_nua_respond_current(nua_t *nua, nua_handle_t *nh, int status, char const *phrase, tagi_t const *tags) {
    nua_respond(nh, status, tl_lasting_phrase(nh, phrase), NUTAG_WITH_THIS(nua), TAG_NEXT(tags));
}
void tl_nua_bye(nua_handle_t *nh, tagi_t const *tags) { nua_bye(nh, TAG_NEXT(tags)); }
void tl_nua_invite(nua_handle_t *nh, tagi_t const *tags) { nua_invite(nh, TAG_NEXT(tags)); }
void tl_nua_cancel(nua_handle_t *nh, tagi_t const *tags) { nua_cancel(nh, TAG_NEXT(tags)); }
void tl_nua_info(nua_handle_t *nh, tagi_t const *tags) { nua_info(nh, TAG_NEXT(tags)); }
nua_handle_t *tl_nua_handle(nua_t *nua, nua_hmagic_t *hmagic, tagi_t const *tags) {
    return nua_handle(nua, hmagic, TAG_NEXT(tags));
}
void tl_nua_authenticate(nua_handle_t *nh, tagi_t const *tags) { nua_authenticate(nh, TAG_NEXT(tags)); }
void tl_nua_options(nua_handle_t *nh, tagi_t const *tags) { nua_options(nh, TAG_NEXT(tags)); }
void tl_nua_refer(nua_handle_t *nh, tagi_t const *tags) { nua_refer(nh, TAG_NEXT(tags)); }
void tl_nua_register(nua_handle_t *nh, tagi_t const *tags) { nua_register(nh, TAG_NEXT(tags)); }
void tl_nua_unregister(nua_handle_t *nh, tagi_t const *tags) { nua_unregister(nh, TAG_NEXT(tags)); }

tag_type_t tl_tag_null(void) { return tag_null; }
tag_type_t tl_nutag_url(void) { return nutag_url; }
tag_type_t tl_nutag_autoanswer(void) { return nutag_autoanswer; }
tag_type_t tl_nutag_autoack(void) { return nutag_autoack; }
tag_type_t tl_nutag_media_enable(void) { return nutag_media_enable; }
tag_type_t tl_siptag_allow_str(void) { return siptag_allow_str; }
tag_type_t tl_nutag_appl_method(void) { return nutag_appl_method; }
tag_type_t tl_nutag_with(void) { return nutag_with; }
tag_type_t tl_nutag_callstate(void) { return nutag_callstate; }
tag_type_t tl_ntatag_server_rport(void) { return ntatag_server_rport; }
tag_type_t tl_siptag_payload_str(void) { return siptag_payload_str; }
tag_type_t tl_siptag_content_type_str(void) { return siptag_content_type_str; }
tag_type_t tl_siptag_header_str(void) { return siptag_header_str; }
tag_type_t tl_siptag_reason_str(void) { return siptag_reason_str; }
tag_type_t tl_siptag_user_agent_str(void) { return siptag_user_agent_str; }
tag_type_t tl_siptag_server_str(void) { return siptag_server_str; }
tag_type_t tl_siptag_to_str(void) { return siptag_to_str; }
tag_type_t tl_siptag_from_str(void) { return siptag_from_str; }
tag_type_t tl_nutag_auth(void) { return nutag_auth; }
tag_type_t tl_siptag_call_id_str(void) { return siptag_call_id_str; }
tag_type_t tl_siptag_refer_to_str(void) { return siptag_refer_to_str; }

int tl_subscription_terminated(sip_t const *sip) {
    if (!sip || !sip->sip_subscription_state || !sip->sip_subscription_state->ss_substate) return -1;
    return strcasecmp(sip->sip_subscription_state->ss_substate, "terminated") == 0 ? 1 : 0;
}
tag_type_t tl_nutag_sips_url(void) { return nutag_sips_url; }
tag_type_t tl_siptag_contact_str(void) { return siptag_contact_str; }
tag_type_t tl_tptag_certificate(void) { return tptag_certificate; }
tag_type_t tl_tptag_tls_verify_policy(void) { return tptag_tls_verify_policy; }
unsigned tl_tls_verify_servers(void) { return TPTLS_VERIFY_SUBJECTS_OUT; }
tag_type_t tl_nutag_registrar(void) { return nutag_registrar; }
tag_type_t tl_nutag_m_username(void) { return nutag_m_username; }
tag_type_t tl_siptag_expires_str(void) { return siptag_expires_str; }
tag_type_t tl_ntatag_maxsize(void) { return ntatag_maxsize; }
tag_type_t tl_ntatag_merge_482(void) { return ntatag_merge_482; }

int tl_callstate(tagi_t const *tags) {
    tagi_t const *t = tl_find(tags, nutag_callstate);
    return t ? (int)t->t_value : -1;
}

int tl_current_request_source(nua_t *nua, char *host, size_t hostlen, int *port, int *is_tcp) {
    msg_t *msg = nua_current_request(nua);
    if (!msg) return -1;
    su_addrinfo_t *ai = msg_addrinfo(msg);
    if (!ai || !ai->ai_addr) return -1;
    char service[16];
    if (getnameinfo((struct sockaddr const *)ai->ai_addr, (socklen_t)ai->ai_addrlen, host, (socklen_t)hostlen,
                    service, sizeof service, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return -1;
    *port = atoi(service);
    *is_tcp = ai->ai_protocol == IPPROTO_TCP || ai->ai_socktype == SOCK_STREAM;
    return 0;
}

char *tl_header_string(msg_header_t const *header) {
    if (!header) return NULL;
    char buffer[1024];
    issize_t n = msg_header_field_e(buffer, sizeof buffer, header, 0);
    if (n < 0) return NULL;
    if ((size_t)n < sizeof buffer) return strdup(buffer);
    // Rare: a header longer than the stack buffer; size it exactly rather than truncate.
    char *big = malloc((size_t)n + 1);
    if (!big) return NULL;
    msg_header_field_e(big, (isize_t)n + 1, header, 0);
    return big;
}

int tl_challenge_realm(sip_t const *sip, char *realm, size_t realmlen) {
    msg_auth_t const *challenge = sip->sip_proxy_authenticate ? sip->sip_proxy_authenticate : sip->sip_www_authenticate;
    for (; challenge; challenge = challenge->au_next) {
        if (!challenge->au_scheme || strcasecmp(challenge->au_scheme, "Digest") != 0) continue;
        char const *value = msg_params_find(challenge->au_params, "realm=");
        if (!value || strlen(value) >= realmlen) return -1;
        strcpy(realm, value);
        return 0;
    }
    return -1;
}

char *tl_request_uri(sip_t const *sip) {
    if (!sip || !sip->sip_request) return NULL;
    char buffer[1024];
    isize_t n = url_e(buffer, sizeof buffer, sip->sip_request->rq_url);
    if (n < 0 || (size_t)n >= sizeof buffer) return NULL;
    buffer[n] = 0;
    return strdup(buffer);
}

int tl_registration_expires(sip_t const *sip) {
    if (!sip) return -1;
    if (sip->sip_contact && sip->sip_contact->m_expires) return atoi(sip->sip_contact->m_expires);
    if (sip->sip_expires) return (int)sip->sip_expires->ex_delta;
    return -1;
}

// MARK: - Commands

struct tl_task_box { tl_task_f task; void *context; };

static void tl_deliver(su_root_magic_t *magic, su_msg_r msg, su_msg_arg_t *arg) {
    (void)magic; (void)msg;
    struct tl_task_box *box = (struct tl_task_box *)arg;
    box->task(box->context);
}

int tl_post(su_root_t *root, tl_task_f task, void *context) {
    su_msg_r msg = SU_MSG_R_INIT;
    if (su_msg_create(msg, su_root_task(root), su_root_task(root), tl_deliver, sizeof(struct tl_task_box)) != 0)
        return -1;
    struct tl_task_box *box = (struct tl_task_box *)su_msg_data(msg);
    box->task = task;
    box->context = context;
    return su_msg_send(msg);
}

struct tl_timer_box { tl_task_f task; void *context; };

static void tl_timer_fired(su_root_magic_t *magic, su_timer_t *timer, su_timer_arg_t *arg) {
    (void)magic;
    struct tl_timer_box *box = (struct tl_timer_box *)arg;
    su_timer_destroy(timer);
    tl_task_f task = box->task;
    void *context = box->context;
    free(box);
    task(context);
}

int tl_after(su_root_t *root, unsigned milliseconds, tl_task_f task, void *context) {
    su_timer_t *timer = su_timer_create(su_root_task(root), 0);
    if (!timer) return -1;
    struct tl_timer_box *box = malloc(sizeof *box);
    if (!box) { su_timer_destroy(timer); return -1; }
    box->task = task;
    box->context = context;
    if (su_timer_set_interval(timer, tl_timer_fired, box, milliseconds) != 0) {
        free(box);
        su_timer_destroy(timer);
        return -1;
    }
    return 0;
}

// MARK: - Logging

static tl_log_f tl_log_sink;

static void tl_logger(void *stream, char const *fmt, va_list ap) {
    (void)stream;
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    if (tl_log_sink) tl_log_sink(su_log_default->log_level, line);
}

void tl_log_redirect(tl_log_f sink, int level) {
    tl_log_sink = sink;
    su_log_redirect(NULL, tl_logger, NULL);
    su_log_set_level(NULL, (unsigned)level);
}
