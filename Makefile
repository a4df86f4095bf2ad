# Two commands: `make demo` runs the whole job on synthetic data; `make test` runs the tests.
# Both create (or reuse) the virtual environment .venv and install the pinned requirements.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEMO_CONFIG := configs/demo.config

.PHONY: demo test venv clean-demo train-all pretrained

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ needed"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	@if [ -d demo/master ]; then echo "Reusing the synthetic master in demo/master"; \
	else $(PY) make_synthetic_master.py --out demo/master --per-category 200 --seed 0; fi
	@if [ -d demo/ALL ]; then echo "Reusing the split in demo/ALL"; \
	else $(PY) split_master.py --master demo/master --category Early --seed 42 \
	     --dest demo/ALL --mini-test demo/mini_test; fi
	$(PY) TensorflowUNetALLTrainer.py $(DEMO_CONFIG)
	$(PY) TensorflowUNetALLEvaluator.py $(DEMO_CONFIG)
	$(PY) TensorflowUNetALLInfer.py $(DEMO_CONFIG)
	$(PY) TensorflowUNetALLInfer.py --model pretrained --images demo/mini_test --output demo/mini_test_pretrained
	@echo
	@echo "Demo done. Outputs:"
	@echo "  data          demo/master (synthetic master), demo/ALL (split), demo/mini_test"
	@echo "  model         demo/models/best_model.keras"
	@echo "  training      demo/eval/train_log.csv, demo/eval/train_losses.png, demo/eval/train_metrics.png"
	@echo "  evaluation    demo/eval/summary.json (pixel and cell scores), demo/eval/eval_histograms.png,"
	@echo "                demo/eval/eval_worst_cells.png"
	@echo "  inference     demo/mini_test_output/ (masks), demo/mini_test_output_labels/ (16-bit cell labels),"
	@echo "                demo/mini_test_output_overlay/ (numbered cells), demo/mini_test_output_geojson/ (QuPath),"
	@echo "                demo/mini_test_output_montage.png,"
	@echo "                demo/mini_test_output_cell_counts.csv, demo/mini_test_output_cells.csv (one row per cell)"
	@echo "  logs          TensorBoard logs in demo/eval/tensorboard"
	@echo "  shipped model the same mini_test segmented by pretrained/leukemia_all.keras:"
	@echo "                demo/mini_test_pretrained/ (masks/, labels/, overlays/, geojson/, montage.png, CSVs)"

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

# All four categories of the Kaggle download: `make train-all MASTER=/path/to/leukemia` splits it
# into ALL/ (once; the download is only read), trains with configs/all_cpu_fast.config and evaluates.
train-all: $(VENV)/.installed
	@if [ -z "$(MASTER)" ] && [ ! -d ALL/train/original/Pro ]; then \
	  echo "Give the unpacked Kaggle dataset: make train-all MASTER=/path/to/leukemia"; exit 2; fi
	@if [ -d ALL/train/original/Pro ]; then echo "Reusing the split in ALL/"; \
	else $(PY) split_master.py --master "$(MASTER)" --category all --dest ALL; fi
	$(PY) TensorflowUNetALLTrainer.py configs/all_cpu_fast.config
	$(PY) TensorflowUNetALLEvaluator.py configs/all_cpu_fast.config

# The shipped model, made again as pretrained/README.md says: configs/all_cpu_fast.config trained on the
# train rows of a Kaggle-layout folder with split.csv (Early's reference test rows are never
# trained on), scored by benchmarks/real_all.py, then saved without its optimizer state.
PRETRAINED_DATA ?= ../shared/data/leukemia-all
pretrained: $(VENV)/.installed
	$(PY) benchmarks/real_all.py --config configs/all_cpu_fast.config --data "$(PRETRAINED_DATA)" \
	  --scratch bench_runs/pretrained --tag all_cpu_fast --name "shipped model (configs/all_cpu_fast.config)"
	$(PY) export_model.py "$$(ls -d bench_runs/pretrained/run-* | tail -1)/config" \
	  --inference-copy pretrained/leukemia_all.keras
