/* Levelled logging; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *lvl_name(int lvl)
{
        switch (lvl) {
        case LOG_LVL_ERR:
                return "error";
        case LOG_LVL_WARN:
                return "warn";
        case LOG_LVL_INFO:
                return "info";
        default:
                return "debug";
        }
}

/* JSON-escape \p s into \p out (always NUL-terminated, truncated to fit). */
static void json_escape(const char *s, char *out, size_t outsz)
{
        size_t o = 0;

        for (; *s && o + 7 < outsz; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\') {
                        out[o++] = '\\';
                        out[o++] = (char)c;
                } else if (c < 0x20) {
                        o += (size_t)snprintf(out + o, outsz - o, "\\u%04x", c);
                } else {
                        out[o++] = (char)c;
                }
        }
        out[o] = '\0';
}

void log_write(int lvl, const char *fac, const char *fmt, ...)
{
        char msg[2048], esc[4096], ts[96];
        struct timespec now;
        struct tm tm;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
        if (genq_g.log_json) {
                json_escape(msg, esc, sizeof(esc));
                fprintf(stderr,
                        "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"%s\","
                        "\"fac\":\"%s\",\"msg\":\"%s\"}\n",
                        ts, lvl_name(lvl), genq_g.log_ident, fac, esc);
        } else {
                fprintf(stderr, "%s %s %s [%s] %s\n", ts, genq_g.log_ident,
                        lvl_name(lvl), fac, msg);
        }
}

int log_parse_level(const char *s)
{
        static const struct {
                const char *name;
                int lvl;
        } map[] = {
                {"error", LOG_LVL_ERR}, {"warn", LOG_LVL_WARN},
                {"info", LOG_LVL_INFO}, {"debug", LOG_LVL_DEBUG},
        };

        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                if (!strcasecmp(s, map[i].name))
                        return map[i].lvl;
        return -1;
}

int log_parse_debug(const char *s, unsigned *bits, char *errstr,
                    size_t errstr_size)
{
        static const struct {
                const char *name;
                unsigned bit;
        } map[] = {
                {"http", LOG_DBG_HTTP}, {"kafka", LOG_DBG_KAFKA},
                {"pg", LOG_DBG_PG},     {"job", LOG_DBG_JOB},
                {"conf", LOG_DBG_CONF}, {"all", ~0u},
        };
        char word[32];

        *bits = 0;
        while (*s) {
                size_t n = strcspn(s, ", ");
                size_t i;

                if (n == 0 || n >= sizeof(word)) {
                        s += n ? n : 1;
                        continue;
                }
                memcpy(word, s, n);
                word[n] = '\0';
                for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                        if (!strcmp(word, map[i].name))
                                break;
                if (i == sizeof(map) / sizeof(map[0])) {
                        snprintf(errstr, errstr_size,
                                 "unknown debug context \"%s\" (expected "
                                 "http, kafka, pg, job, conf or all)",
                                 word);
                        return -1;
                }
                *bits |= map[i].bit;
                s += n;
        }
        return 0;
}
