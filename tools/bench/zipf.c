#include "zipf.h"

#include <math.h>

#include "err.h"

double zipf_zeta(uint64_t n, double theta)
{
	/* Summed from the small terms up, so they are not lost against the
	 * large ones in double precision. */
	double sum = 0;
	for (uint64_t i = n; i >= 1; i--)
		sum += 1.0 / pow((double)i, theta);
	return sum;
}

int zipf_init(struct zipf *z, uint64_t n, double theta)
{
	if (n == 0 || !(theta > 0.0 && theta < 1.0))
		return RK_EINVALID;
	z->n = n;
	z->theta = theta;
	z->zetan = zipf_zeta(n, theta);
	z->alpha = 1.0 / (1.0 - theta);
	z->half_pow = 1.0 + pow(0.5, theta);
	if (n > 2) {
		double zeta2 = 1.0 + pow(0.5, theta);
		z->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) /
			 (1.0 - zeta2 / z->zetan);
	} else {
		z->eta = 0; /* the tail formula is never reached */
	}
	return 0;
}

uint64_t zipf_next(const struct zipf *z, struct rk_rng *r)
{
	double u = rk_rng_double(r);
	double uz = u * z->zetan;
	if (uz < 1.0 || z->n == 1)
		return 0;
	if (uz < z->half_pow || z->n == 2)
		return 1;
	double x = (double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha);
	uint64_t k = (uint64_t)x;
	return k >= z->n ? z->n - 1 : k;
}
