# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Executes every notebook in colab/ (with its tiny setting), so none rots."""

import glob
import os

from absl.testing import absltest
from absl.testing import parameterized
import nbclient
import nbformat

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(REPO, 'colab', '*.ipynb')))


class NotebooksTest(parameterized.TestCase):

  def test_there_are_notebooks(self):
    self.assertNotEmpty(NOTEBOOKS)

  @parameterized.named_parameters(
      (os.path.basename(p)[:-len('.ipynb')], p) for p in NOTEBOOKS)
  def test_notebook_runs(self, path):
    notebook = nbformat.read(path, as_version=4)
    os.environ['SNR_OPTAX_NOTEBOOK_TINY'] = '1'
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name='python3',
        resources={'metadata': {'path': os.path.dirname(path)}})
    client.execute()
    errors = [o for cell in notebook.cells if cell.cell_type == 'code'
              for o in cell.get('outputs', []) if o.output_type == 'error']
    self.assertEmpty(errors)
    outputs = [o for cell in notebook.cells if cell.cell_type == 'code'
               for o in cell.get('outputs', [])]
    self.assertTrue(any(o.output_type == 'display_data'
                        and 'image/png' in o.get('data', {})
                        for o in outputs), 'the notebook draws no plot')


if __name__ == '__main__':
  absltest.main()
