/*
 * rcache: the response cache's key.  See rcache.h.
 */
#include "rcache.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmem.h"

/* Fields are fed with their lengths so that no two different inputs
 * concatenate to the same bytes. */
static void feed(EVP_MD_CTX *ctx, const void *p, size_t n)
{
        uint64_t len = n;

        EVP_DigestUpdate(ctx, &len, sizeof(len));
        EVP_DigestUpdate(ctx, p, n);
}

static void feed_str(EVP_MD_CTX *ctx, const char *s)
{
        feed(ctx, s ? s : "", s ? strlen(s) : 0);
}

int rcache_key(const Genq__V1__Job *job, char out[RCACHE_KEY_LEN + 1])
{
        const Genq__V1__ChatRequest *c;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        EVP_MD_CTX *ctx;
        uint8_t *buf;
        size_t len;

        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_CHAT)
                return -1;
        c = job->chat;
        if (c->temperature_opt_case !=
                    GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE ||
            c->temperature != 0.0f)
                return -1;
        /* protobuf-c packs a message deterministically (fields in number
         * order; ChatRequest has no map). */
        len = genq__v1__chat_request__get_packed_size(c);
        buf = xmalloc(len ? len : 1);
        genq__v1__chat_request__pack(c, buf);
        ctx = EVP_MD_CTX_new();
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        feed_str(ctx, "genq-rcache-v1");
        feed_str(ctx, job->tenant_id);
        feed_str(ctx, "chat");
        feed_str(ctx, job->route);
        for (size_t i = 0; i < job->n_providers; i++)
                feed_str(ctx, job->providers[i]);
        feed(ctx, buf, len);
        EVP_DigestFinal_ex(ctx, md, &md_len);
        EVP_MD_CTX_free(ctx);
        free(buf);
        for (unsigned i = 0; i < md_len && 2 * i < RCACHE_KEY_LEN; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
        out[RCACHE_KEY_LEN] = '\0';
        return 0;
}
