/* prep.h — input preprocessing (prep.c). Everything it offers is public: sgn_normalize, sgn_prep
 * and the sgn_prep_* functions are declared in sketchgn_io.h. */
#ifndef SGN_PREP_H
#define SGN_PREP_H

#include "sketchgn_io.h"

#endif
