// sofia's su_configure.h defines _GNU_SOURCE; glibc's fd_set must be seen first the way Foundation sees it,
// or modules importing both disagree on its member names (see shared notes, c-interop.md).
#include <sys/types.h>
#include <sys/select.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_tagarg.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/msg_header.h>
