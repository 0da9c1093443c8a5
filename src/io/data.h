/* data.h — the data loaders (data.c) behind the SPECs of sketchgn_io.h. Everything they offer is
 * public: sgn_dataset, sgn_data_load, sgn_data_synth, sgn_dataset_free are declared there. */
#ifndef SGN_DATA_H
#define SGN_DATA_H

#include "sketchgn_io.h"

#endif
