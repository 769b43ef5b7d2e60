/* Retry delays; see backoff.h. */
#include "backoff.h"

int64_t backoff_delay_ms(const struct backoff_cfg *cfg, int attempt,
                         int64_t hint_ms, uint32_t rnd)
{
        int64_t ceil = cfg->base_ms;

        if (hint_ms >= 0) {
                if (hint_ms > cfg->hint_max_ms)
                        return -1;
                return hint_ms + (hint_ms / 10) * rnd / UINT32_MAX;
        }
        for (int i = 1; i < attempt && ceil < cfg->cap_ms; i++)
                ceil *= 2;
        if (ceil > cfg->cap_ms)
                ceil = cfg->cap_ms;
        return (int64_t)((uint64_t)ceil * rnd / UINT32_MAX);
}

int64_t backoff_fit_deadline(int64_t delay_ms, int64_t now_us,
                             int64_t deadline_us)
{
        int64_t left_ms;

        if (deadline_us <= 0)
                return delay_ms;
        left_ms = (deadline_us - now_us) / 1000;
        if (left_ms <= 0)
                return -1;
        return delay_ms < left_ms ? delay_ms : -1;
}
