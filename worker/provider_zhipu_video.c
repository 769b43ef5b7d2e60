/* PLACEHOLDER until its adapter lands: every call is refused with
 * "not implemented", so a config naming it fails its jobs over to
 * the next provider.  Replaced whole by the adapter. */
#include <stdio.h>

#include "provider.h"

static int build(const struct provider_cfg *p, const char *key,
                 const Genq__V1__Job *job, const struct provider_input *in,
                 struct provider_req *req, char *errstr, size_t errstr_size)
{
        snprintf(errstr, errstr_size, "adapter %s: not implemented",
                 p->adapter);
        return -1;
}

const struct provider_ops provider_zhipu_video_ops = {
        .name = "zhipu_video",
        .kind = GENQ__V1__KIND__KIND_VIDEO,
        .flags = PROVIDER_F_ASYNC,
        .build = build,
};
